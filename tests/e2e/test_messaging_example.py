"""The Twilio and Resend examples in deploy/examples/messaging, served by local mode exactly as written and
driven by the official SDKs, with recording upstreams in place of api.twilio.com and api.resend.com."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import resend
from resend.exceptions import ResendError
from tests.support.recorder import RecordedRequest, RecordingUpstream, Reply
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from tollgate.local.gateway import LocalGateway

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "messaging"
SID = "AC00000000000000000000000000000000"  # the example's connectedAccounts
SHOP_NUMBER = "+14155550199"
SHOP_ADDRESS = "Shop <receipts@shop.example.com>"


def vendors(req: RecordedRequest) -> Reply:
    if req.path.endswith("/Messages.json"):
        return Reply(201, {"sid": "SM" + "0" * 32, "account_sid": SID, "status": "queued"})
    if req.path == "/emails/batch":
        return Reply(200, {"data": [{"id": "e1"}]})
    return Reply(200, {"id": "e1"})


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingUpstream]:
    with RecordingUpstream(vendors) as up:
        yield up


@pytest.fixture(scope="module")
def gateway_options(upstream: RecordingUpstream) -> dict[str, Any]:
    return {
        "manifests": EXAMPLE,
        "upstreams": {"twilio": upstream.url, "resend": upstream.url},
        # What a person exports before `tollgate local deploy/examples/messaging`.
        "env": {"TWILIO_CREDENTIAL": f"{SID}:real_auth_token", "RESEND_API_KEY": "re_real_key"},
    }


@pytest.fixture
def twilio(gateway: LocalGateway, upstream: RecordingUpstream) -> Client:
    upstream.clear()
    client = Client(SID, gateway.tokens["agents/order-notifier"])
    client.api.base_url = gateway.base_url("twilio")
    return client


@pytest.fixture
def mailer(gateway: LocalGateway, upstream: RecordingUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    upstream.clear()
    monkeypatch.setattr(resend, "api_url", gateway.base_url("resend"))
    monkeypatch.setattr(resend, "api_key", gateway.tokens["agents/receipts-mailer"])


def test_both_example_keys_are_minted(gateway: LocalGateway) -> None:
    assert set(gateway.tokens) == {"agents/order-notifier", "agents/receipts-mailer"}


def test_the_order_notifier_texts_us_customers_from_the_shop_number(
    twilio: Client, upstream: RecordingUpstream
) -> None:
    twilio.messages.create(to="+12125550100", from_=SHOP_NUMBER, body="Your order shipped")
    (req,) = upstream.wait_for(1)
    assert req.path == f"/2010-04-01/Accounts/{SID}/Messages.json"


def test_the_order_notifier_texts_the_uk_it_lists_and_prices(
    twilio: Client, upstream: RecordingUpstream
) -> None:
    twilio.messages.create(to="+447700900123", from_=SHOP_NUMBER, body="Your order shipped")
    assert len(upstream.wait_for(1)) == 1


@pytest.mark.parametrize(
    ("to", "from_", "media", "rule"),
    [
        pytest.param("+12125550100", "+14155550111", None, "tollgate_param_rule_broken", id="another sender"),
        pytest.param(
            "+12125550100", SHOP_NUMBER, ["https://x/a.png"], "tollgate_param_rule_broken", id="MMS"
        ),
        pytest.param(
            "+33612345678", SHOP_NUMBER, None, "tollgate_recipient_out_of_scope", id="outside the recipients"
        ),
        pytest.param(
            "+18765550100",
            SHOP_NUMBER,
            None,
            "tollgate_endpoint_unpriced",
            id="in scope but unpriced (Jamaica)",
        ),
    ],
)
def test_the_order_notifier_is_held_to_its_policy(
    twilio: Client, upstream: RecordingUpstream, to: str, from_: str, media: list[str] | None, rule: str
) -> None:
    with pytest.raises(TwilioRestException) as raised:
        twilio.messages.create(to=to, from_=from_, body="hi", media_url=media)
    assert raised.value.status == 403
    assert raised.value.details == {"tollgate_rule": rule}
    assert upstream.requests == []


def test_the_receipts_mailer_sends_from_the_shop_to_example_com(
    mailer: None, upstream: RecordingUpstream
) -> None:
    resend.Emails.send({"from": SHOP_ADDRESS, "to": "ana@example.com", "subject": "Receipt", "text": "$12"})
    resend.Batch.send([{"from": SHOP_ADDRESS, "to": "bo@example.com", "subject": "Receipt", "text": "$9"}])
    assert [r.path for r in upstream.wait_for(2)] == ["/emails", "/emails/batch"]
    assert upstream.requests[0].header("authorization") == "Bearer re_real_key"


def test_a_batch_with_one_email_from_another_sender_is_refused(
    mailer: None, upstream: RecordingUpstream
) -> None:
    batch = [
        {"from": SHOP_ADDRESS, "to": "ana@example.com", "subject": "Receipt", "text": "$12"},
        {"from": "Anyone <x@shop.example.com>", "to": "bo@example.com", "subject": "Receipt", "text": "$9"},
    ]
    with pytest.raises(ResendError) as raised:
        resend.Batch.send(batch)  # type: ignore[arg-type]
    assert raised.value.headers is not None
    assert raised.value.headers["x-tollgate-rule"] == "tollgate_param_rule_broken"
    assert upstream.requests == []
