"""Resend through the real gateway, driven by the official resend-python SDK holding only a vault token.

Resend has no local fake, so a recording upstream stands where api.resend.com would: it answers like
Resend and keeps every request, so the test sees what the gateway forwarded (the real key, never the
vault token) and that refused emails never left the gateway.

resend-python keeps its key and base URL in module globals (`resend.api_key`, `resend.api_url`), so each
test sets them through monkeypatch and leaves them as they were."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import resend
from resend.exceptions import InvalidApiKeyError, RateLimitError, ResendError
from tests.e2e.test_audit_trail import eventually, rows
from tests.support.recorder import RecordedRequest, RecordingUpstream, Reply
from tests.support.world import empty_world

from tollgate.local.gateway import LocalGateway
from tollgate.policy.manifests import KeyObject, Manifests, PolicyObject, SecretObject
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.policy.vault_key import VaultKeySpec
from tollgate.store.redis import RedisStore

REAL_KEY = "re_real_resend_key_0123456789"
SENDER = "Shop <orders@shop.example.com>"


def resend_api(req: RecordedRequest) -> Reply:
    """Answers sends as Resend does: an id per email."""
    if req.method == "POST" and req.path == "/emails":
        return Reply(200, {"id": "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"})
    if req.method == "POST" and req.path == "/emails/batch":
        return Reply(200, {"data": [{"id": f"id-{i}"} for i, _ in enumerate(req.json())]})
    return Reply(404, {"statusCode": 404, "name": "not_found", "message": "Not found"})


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingUpstream]:
    with RecordingUpstream(resend_api) as up:
        yield up


@pytest.fixture(scope="module")
def gateway_options(upstream: RecordingUpstream) -> dict[str, Any]:
    return {"upstreams": {"resend": upstream.url}}


@pytest.fixture
def token(gateway: LocalGateway, upstream: RecordingUpstream, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh policy ($0.01 an email, cap $0.03: three emails fit, a fourth does not), the SDK pointed at
    the gateway with the vault token as its key. Starts from no spend and no recorded requests."""
    upstream.clear()
    empty_world(gateway)
    token = deploy(
        gateway, {"dailyCapUsd": "0.03", "pricePerEmailUsd": "0.01", "recipients": ["example.com"]}
    )
    monkeypatch.setattr(resend, "api_url", gateway.base_url("resend"))
    monkeypatch.setattr(resend, "api_key", token)
    return token


def deploy(gateway: LocalGateway, policy: dict[str, Any]) -> str:
    m = Manifests()
    spec = {"vendor": "resend", "allow": ["POST /emails", "POST /emails/batch"]}
    m.policies["agents/mail"] = PolicyObject(
        "agents", "mail", SpendPolicySpec.model_validate({**spec, **policy})
    )
    m.keys["agents/mailer"] = KeyObject(
        "agents",
        "mailer",
        VaultKeySpec.model_validate(
            {"policyRef": {"name": "mail"}, "vendorKeySecretRef": {"name": "resend", "key": "api-key"}}
        ),
    )
    m.secrets["agents/resend"] = SecretObject("agents", "resend", {"api-key": REAL_KEY})
    return gateway.apply(m)["agents/mailer"]


def email(to: str | list[str] = "ana@example.com", **more: Any) -> Any:
    params = {"from": SENDER, "to": to, "subject": "Your order shipped", "text": "It is on its way.", **more}
    return resend.Emails.send(params)  # type: ignore[arg-type]


async def revoke(gateway: LocalGateway, key_id: str) -> None:
    store = RedisStore.from_url(gateway.redis_url)
    try:
        await store.revoke(key_id)
    finally:
        await store.close()


def test_an_email_within_the_policy_reaches_resend_with_the_real_key(
    token: str, upstream: RecordingUpstream
) -> None:
    sent = email()
    assert sent["id"] == "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"
    (req,) = upstream.wait_for(1)
    assert req.header("authorization") == f"Bearer {REAL_KEY}"
    assert token not in str(req.raw_headers) and token.encode() not in req.body
    assert req.json()["to"] == "ana@example.com"


def test_the_email_that_would_cross_the_cap_is_refused_as_resend_refuses_a_spent_quota(
    token: str, upstream: RecordingUpstream
) -> None:
    email(["ana@example.com", "bo@example.com"])  # two recipients: two emails, $0.02
    with pytest.raises(RateLimitError) as raised:
        email(["ana@example.com", "bo@example.com"])
    # Resend has no 402: its own daily-quota answer (429 daily_quota_exceeded) is the nearest it has.
    assert (raised.value.code, raised.value.error_type) == (429, "daily_quota_exceeded")
    assert raised.value.headers is not None
    assert raised.value.headers["x-tollgate-rule"] == "tollgate_cap_exceeded"
    email("cy@example.com")  # one more fits exactly
    assert len(upstream.requests) == 2


def test_a_batch_counts_every_recipient_of_every_email(token: str, upstream: RecordingUpstream) -> None:
    batch = [
        {"from": SENDER, "to": ["ana@example.com"], "cc": ["bo@example.com"], "subject": "a", "text": "a"},
        {"from": SENDER, "to": ["cy@example.com", "di@example.com"], "subject": "b", "text": "b"},
    ]
    with pytest.raises(RateLimitError):
        resend.Batch.send(batch)  # type: ignore[arg-type]
    assert upstream.requests == []
    sent = resend.Batch.send(batch[1:])  # type: ignore[arg-type]
    assert len(sent["data"]) == 1
    assert len(upstream.requests) == 1


def test_a_recipient_domain_outside_the_policy_is_refused_with_403(
    token: str, upstream: RecordingUpstream
) -> None:
    with pytest.raises(ResendError) as raised:
        email("ana@example.com", bcc=["leak@elsewhere.test"])
    assert (raised.value.code, raised.value.error_type) == (403, "validation_error")
    assert raised.value.headers is not None
    assert raised.value.headers["x-tollgate-rule"] == "tollgate_recipient_out_of_scope"
    assert upstream.requests == []


def test_an_unknown_vault_token_is_refused(
    token: str, upstream: RecordingUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resend, "api_key", "tgk_not_a_real_token")
    with pytest.raises(InvalidApiKeyError) as raised:
        email()
    assert (raised.value.code, raised.value.error_type) == (403, "invalid_api_key")
    assert upstream.requests == []


def test_a_revoked_vault_key_is_refused(
    token: str, gateway: LocalGateway, upstream: RecordingUpstream
) -> None:
    email()
    asyncio.run(revoke(gateway, "agents/mailer"))
    with pytest.raises(ResendError) as raised:
        email()
    assert raised.value.headers is not None
    assert raised.value.headers["x-tollgate-rule"] == "tollgate_key_revoked"
    assert len(upstream.requests) == 1


def test_a_retry_under_the_same_idempotency_key_is_counted_once(
    token: str, upstream: RecordingUpstream
) -> None:
    # Resend sends the first and replays it to the retries, so the cap ($0.03, $0.01 an email) sees one.
    params = {"from": SENDER, "to": "ana@example.com", "subject": "Welcome", "text": "Hello"}
    for _ in range(4):
        resend.Emails.send(params, {"idempotency_key": "welcome/ana"})  # type: ignore[arg-type]
    assert [r.header("idempotency-key") for r in upstream.requests] == ["welcome/ana"] * 4
    email(["bo@example.com", "cy@example.com"])  # $0.02 more: exactly the cap
    with pytest.raises(RateLimitError):
        email("di@example.com")
    # The same key with another email is what Resend itself refuses; Tollgate refuses it up front.
    with pytest.raises(ResendError) as raised:
        resend.Emails.send({**params, "to": "eve@example.com"}, {"idempotency_key": "welcome/ana"})  # type: ignore[arg-type]
    assert raised.value.headers is not None
    assert raised.value.headers["x-tollgate-rule"] == "tollgate_idempotency_key_reused"


def test_the_audit_row_holds_the_email_redacted_and_the_id_resend_gave_it(
    token: str, gateway: LocalGateway
) -> None:
    sent = email(html="<p>secret offer</p>")
    [row] = eventually(lambda: rows(gateway, "vendor = 'resend' AND decision = 'allow'"))
    params = json.loads(row["params"])
    assert (params["to"], params["subject"]) == ("ana@example.com", "Your order shipped")
    assert params["text"] == params["html"] == "[redacted]"
    assert (row["vendor_object_id"], row["vendor_object"]) == (sent["id"], "email")
    dump = repr(rows(gateway, "1=1"))
    assert "secret offer" not in dump and REAL_KEY not in dump and token not in dump
