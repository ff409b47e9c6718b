"""Twilio MMS and voice calls through the real gateway with twilio-python: an MMS is priced as one MMS
whatever its text, a call counts the policy's per-call reservation (its length is unknown when placed),
and a policy without one refuses calls rather than guess."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.support.recorder import RecordedRequest, RecordingUpstream, Reply
from tests.support.world import empty_world
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from tollgate.local.gateway import LocalGateway
from tollgate.policy.manifests import KeyObject, Manifests, PolicyObject, SecretObject
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.policy.vault_key import VaultKeySpec

SID = "AC" + "3c" * 16
TO, FROM = "+14155550100", "+14155550199"
ACCOUNT = "/2010-04-01/Accounts/*"


def twilio(req: RecordedRequest) -> Reply:
    if req.path.endswith("/Calls.json"):
        return Reply(201, {"sid": "CA" + "0" * 32, "account_sid": SID, "status": "queued"})
    return Reply(201, {"sid": "MM" + "0" * 32, "account_sid": SID, "status": "queued"})


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingUpstream]:
    with RecordingUpstream(twilio) as up:
        yield up


@pytest.fixture(scope="module")
def gateway_options(upstream: RecordingUpstream) -> dict[str, Any]:
    return {"upstreams": {"twilio": upstream.url}}


@pytest.fixture
def fresh(gateway: LocalGateway, upstream: RecordingUpstream) -> None:
    """No spend and no recorded requests from earlier tests."""
    upstream.clear()
    empty_world(gateway)


def deploy(gateway: LocalGateway, **policy: object) -> Client:
    spec = {
        "vendor": "twilio",
        "allow": [f"POST {ACCOUNT}/Messages.json", f"POST {ACCOUNT}/Calls.json"],
        "connectedAccounts": [SID],
        **policy,
    }
    m = Manifests()
    m.policies["agents/voice"] = PolicyObject("agents", "voice", SpendPolicySpec.model_validate(spec))
    m.keys["agents/caller"] = KeyObject(
        "agents",
        "caller",
        VaultKeySpec.model_validate(
            {"policyRef": {"name": "voice"}, "vendorKeySecretRef": {"name": "twilio", "key": "credential"}}
        ),
    )
    m.secrets["agents/twilio"] = SecretObject("agents", "twilio", {"credential": f"{SID}:real_token"})
    client = Client(SID, gateway.apply(m)["agents/caller"])
    client.api.base_url = gateway.base_url("twilio")
    return client


def call(client: Client) -> object:
    return client.calls.create(to=TO, from_=FROM, url="https://shop.example.com/voice.xml")


def test_calls_count_the_policys_reservation_against_the_cap(
    fresh: None, gateway: LocalGateway, upstream: RecordingUpstream
) -> None:
    client = deploy(gateway, dailyCapUsd="0.25", callReservationUsd="0.10")
    call(client)
    call(client)
    with pytest.raises(TwilioRestException) as raised:
        call(client)  # a third $0.10 would make $0.30
    assert raised.value.status == 402
    assert [r.path for r in upstream.requests] == [f"/2010-04-01/Accounts/{SID}/Calls.json"] * 2


def test_calls_are_refused_when_the_policy_prices_none(
    fresh: None, gateway: LocalGateway, upstream: RecordingUpstream
) -> None:
    client = deploy(gateway, dailyCapUsd="5")
    with pytest.raises(TwilioRestException) as raised:
        call(client)
    assert raised.value.status == 403
    assert raised.value.details == {"tollgate_rule": "tollgate_endpoint_unpriced"}
    assert "callReservationUsd" in raised.value.msg
    assert upstream.requests == []


def test_an_mms_is_one_mms_whatever_its_text(
    fresh: None, gateway: LocalGateway, upstream: RecordingUpstream
) -> None:
    # Two MMS at the default $0.02 fit a $0.05 cap; as SMS, 1,000 characters would be 7 segments each.
    client = deploy(gateway, dailyCapUsd="0.05")
    for _ in range(2):
        client.messages.create(
            to=TO, from_=FROM, body="x" * 1000, media_url=["https://shop.example.com/a.png"]
        )
    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(to=TO, from_=FROM, body="x", media_url=["https://shop.example.com/a.png"])
    assert raised.value.status == 402
    assert len(upstream.requests) == 2
    assert upstream.requests[0].body.count(b"MediaUrl=") == 1
