"""Class 4: a vault key works only on its own vendor's route. Elsewhere it is refused as a key (401) and
nothing is forwarded, so a vendor never receives another vendor's real key."""

from __future__ import annotations

import base64

import pytest
from tests.security.conftest import FORM, JSON, REAL_SECRETS, TWILIO_SID, World


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("key_of", "target", "auth", "body", "ctype"),
    [
        pytest.param("stripe", "/resend/emails", "bearer", b'{"from": "bot@example.com", "to": "ana@example.com"}', JSON, id="stripe key on resend"),
        pytest.param("stripe", f"/twilio/2010-04-01/Accounts/{TWILIO_SID}/Messages.json", "basic", b"To=%2B14155550100&Body=hi", FORM, id="stripe key on twilio"),
        pytest.param("resend", "/stripe/v1/refunds", "bearer", b"charge=ch_mine&amount=100", FORM, id="resend key on stripe"),
        pytest.param("resend", f"/twilio/2010-04-01/Accounts/{TWILIO_SID}/Messages.json", "basic", b"To=%2B14155550100&Body=hi", FORM, id="resend key on twilio"),
        pytest.param("twilio", "/stripe/v1/balance", "bearer", b"", FORM, id="twilio key on stripe"),
        pytest.param("twilio", "/resend/emails", "bearer", b'{"from": "bot@example.com", "to": "ana@example.com"}', JSON, id="twilio key on resend"),
    ],
)  # fmt: skip
def test_a_key_on_another_vendors_route_is_refused_and_no_real_key_leaves(
    world: World, key_of: str, target: str, auth: str, body: bytes, ctype: tuple[str, str]
) -> None:
    token = world.tokens[key_of]
    header = f"Bearer {token}" if auth == "bearer" else basic(TWILIO_SID, token)
    method = "GET" if not body else "POST"
    r = world.send(method, target, body, [("authorization", header), ctype])
    assert r.status in (401, 403), r.body  # each vendor's own word for a bad key (Resend answers 403)
    assert r.headers["x-tollgate-rule"] == "tollgate_key_wrong_vendor"
    assert world.upstreams.all() == []
    assert not any(secret in r.body.decode() for secret in REAL_SECRETS)
