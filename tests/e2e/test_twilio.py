"""Twilio through the real gateway, driven by the official twilio-python SDK holding only a vault token.

Twilio has no local fake, so a recording upstream stands where api.twilio.com would: it answers like
Twilio and keeps every request, so the test sees exactly what the gateway forwarded (the real
credentials, never the vault token) and that refused messages never left the gateway."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from tests.e2e.test_audit_trail import eventually, rows
from tests.support.recorder import RecordedRequest, RecordingUpstream, Reply
from tests.support.world import empty_world
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from tollgate.local.gateway import LocalGateway
from tollgate.policy.manifests import KeyObject, Manifests, PolicyObject, SecretObject
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.policy.vault_key import VaultKeySpec
from tollgate.store.redis import RedisStore

SID = "AC" + "1f" * 16
REAL_TOKEN = "real_twilio_auth_token_0123456789"
ALLOWED = "+14155550100"


def twilio(req: RecordedRequest) -> Reply:
    """Answers Messages.create as Twilio does (201 and the message resource)."""
    if req.method == "POST" and req.path == f"/2010-04-01/Accounts/{SID}/Messages.json":
        return Reply(
            201,
            {"sid": "SM" + "0" * 32, "account_sid": SID, "status": "queued", "num_segments": "1"},
        )
    return Reply(404, {"code": 20404, "message": "not found", "more_info": "", "status": 404})


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingUpstream]:
    with RecordingUpstream(twilio) as up:
        yield up


@pytest.fixture(scope="module")
def gateway_options(upstream: RecordingUpstream) -> dict[str, Any]:
    return {"upstreams": {"twilio": upstream.url}}


@pytest.fixture
def client(gateway: LocalGateway, upstream: RecordingUpstream) -> Client:
    """A fresh policy (cap $0.02: two US segments at $0.0083 fit, a third does not) and a client with its
    vault token as the auth token. Starts from no spend and no recorded requests."""
    upstream.clear()
    empty_world(gateway)
    token = deploy(gateway, {"dailyCapUsd": "0.02", "recipients": ["+1415"]})
    return sdk(gateway, token)


def deploy(gateway: LocalGateway, policy: dict[str, Any]) -> str:
    m = Manifests()
    spec = {"vendor": "twilio", "allow": ["POST /2010-04-01/Accounts/*/Messages.json"]}
    m.policies["agents/sms"] = PolicyObject(
        "agents", "sms", SpendPolicySpec.model_validate({**spec, "connectedAccounts": [SID], **policy})
    )
    m.keys["agents/notifier"] = KeyObject(
        "agents",
        "notifier",
        VaultKeySpec.model_validate(
            {"policyRef": {"name": "sms"}, "vendorKeySecretRef": {"name": "twilio", "key": "credential"}}
        ),
    )
    m.secrets["agents/twilio"] = SecretObject("agents", "twilio", {"credential": f"{SID}:{REAL_TOKEN}"})
    return gateway.apply(m)["agents/notifier"]


def sdk(gateway: LocalGateway, token: str) -> Client:
    client = Client(SID, token)
    client.api.base_url = gateway.base_url("twilio")
    return client


def send(client: Client, body: str = "Your order shipped", to: str = ALLOWED) -> Any:
    return client.messages.create(to=to, from_="+14155550199", body=body)


async def revoke(gateway: LocalGateway, key_id: str) -> None:
    store = RedisStore.from_url(gateway.redis_url)
    try:
        await store.revoke(key_id)
    finally:
        await store.close()


def basic_credentials(req: RecordedRequest) -> str:
    scheme, _, value = (req.header("authorization") or "").partition(" ")
    assert scheme == "Basic"
    return base64.b64decode(value).decode()


def test_an_sms_within_the_policy_reaches_twilio_with_the_real_credentials(
    client: Client, upstream: RecordingUpstream
) -> None:
    message = send(client)
    assert message.status == "queued"
    (req,) = upstream.wait_for(1)
    assert req.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert basic_credentials(req) == f"{SID}:{REAL_TOKEN}"
    assert "tgk_" not in str(req.raw_headers) and b"tgk_" not in req.body


def test_the_sms_that_would_cross_the_cap_raises_402_and_is_not_sent(
    client: Client, upstream: RecordingUpstream
) -> None:
    send(client)
    send(client)
    with pytest.raises(TwilioRestException) as raised:
        send(client)
    assert raised.value.status == 402
    assert raised.value.details == {"tollgate_rule": "tollgate_cap_exceeded"}
    assert len(upstream.requests) == 2


def test_a_long_unicode_sms_is_counted_by_segments(client: Client, upstream: RecordingUpstream) -> None:
    # 71 UCS-2 characters are two segments of 67: with one sent already, a two-segment message would be
    # the third and fourth segments, over the $0.02 cap; a one-segment message still fits.
    send(client)
    with pytest.raises(TwilioRestException) as raised:
        send(client, "✓" * 71)
    assert raised.value.status == 402
    send(client, "✓" * 70)
    assert len(upstream.requests) == 2


def test_a_recipient_outside_the_policy_is_refused_with_403(
    client: Client, upstream: RecordingUpstream
) -> None:
    with pytest.raises(TwilioRestException) as raised:
        send(client, to="+12125550100")
    assert (raised.value.status, raised.value.code) == (403, 20403)
    assert raised.value.details == {"tollgate_rule": "tollgate_recipient_out_of_scope"}
    assert upstream.requests == []


def test_an_account_the_policy_does_not_name_is_refused(client: Client, upstream: RecordingUpstream) -> None:
    other = "AC" + "2e" * 16
    with pytest.raises(TwilioRestException) as raised:
        client.api.v2010.accounts(other).messages.create(to=ALLOWED, from_="+14155550199", body="hi")
    assert raised.value.status == 403
    assert upstream.requests == []


def test_an_unknown_vault_token_is_refused_with_401(
    gateway: LocalGateway, upstream: RecordingUpstream
) -> None:
    upstream.clear()
    with pytest.raises(TwilioRestException) as raised:
        send(sdk(gateway, "tgk_not_a_real_token"))
    assert (raised.value.status, raised.value.code) == (401, 20003)
    assert upstream.requests == []


def test_a_revoked_vault_key_is_refused_with_401(
    client: Client, gateway: LocalGateway, upstream: RecordingUpstream
) -> None:
    send(client)
    asyncio.run(revoke(gateway, "agents/notifier"))
    with pytest.raises(TwilioRestException) as raised:
        send(client)
    assert (raised.value.status, raised.value.details) == (401, {"tollgate_rule": "tollgate_key_revoked"})
    assert len(upstream.requests) == 1


def test_each_twilio_call_is_one_audit_row_with_its_cost_and_recipient(
    client: Client, gateway: LocalGateway, upstream: RecordingUpstream
) -> None:
    # The audit pipeline runs inside LocalGateway: Envoy's access log → SQL, spend settled on Twilio's 201.
    # Numbers no other test uses, since the module's gateway keeps one audit database for all of them.
    to, outside = "+14155550123", "+12125550123"
    sent = send(client, "Tracking: " + "x" * 150, to=to)  # 160 GSM-7 characters: still one segment
    with pytest.raises(TwilioRestException):
        send(client, to=outside)

    def twilio_rows() -> list[dict[str, Any]]:
        found = rows(
            gateway, "vendor = 'twilio' AND customer IN (:to, :outside)", {"to": to, "outside": outside}
        )
        return found if len(found) == 2 and found[0]["settlement"] == "settled" else []

    ok, refused = eventually(twilio_rows)
    assert sent.sid and (ok["decision"], ok["rule"], ok["vendor_status"]) == (
        "allow",
        "tollgate_allowed",
        201,
    )
    assert (ok["endpoint"], ok["cost_micro_usd"], ok["customer"]) == ("messages.create", 8_300, to)
    assert (ok["vault_key_id"], ok["policy_id"]) == ("agents/notifier", "agents/sms")
    assert (refused["decision"], refused["rule"]) == ("deny", "tollgate_recipient_out_of_scope")
    assert (refused["customer"], refused["cost_micro_usd"], refused["vendor_status"]) == (outside, 0, None)
    dump = repr(rows(gateway, "1=1"))
    assert REAL_TOKEN not in dump and "tgk_" not in dump  # the audit never holds a credential


def test_the_audit_row_holds_the_message_redacted_and_the_sid_twilio_gave_it(
    client: Client, gateway: LocalGateway
) -> None:
    sent = send(client, body="Your code is 424242")
    [row] = eventually(lambda: rows(gateway, "vendor = 'twilio' AND decision = 'allow'"))
    params = json.loads(row["params"])
    assert params["To"] == ALLOWED and params["Body"] == "[redacted]"
    assert (row["vendor_object_id"], row["vendor_object"], row["vendor_state"]) == (
        sent.sid,
        "message",
        "queued",
    )
    dump = repr(rows(gateway, "1=1"))
    assert "424242" not in dump and REAL_TOKEN not in dump and "tgk_" not in dump
