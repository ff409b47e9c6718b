"""What reaches the vendor, and what reaches logs: the real key goes upstream, the vault key never does,
and neither appears in any log Tollgate writes. Stripe is a recording upstream here, so every byte
Envoy forwards can be inspected (and transfers, which localstripe lacks, can be exercised)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from tests.e2e.conftest import REAL_KEY
from tests.support.recorder import RecordedRequest, RecordingUpstream, Reply

from tollgate.local.gateway import LocalGateway
from tollgate.policy.manifests import KeyObject, Manifests, PolicyObject, SecretObject
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.policy.vault_key import VaultKeySpec

CHARGE = {
    "id": "ch_rec",
    "object": "charge",
    "amount": 5000,
    "amount_refunded": 0,
    "currency": "usd",
    "customer": "cus_rec",
}


def vendor(req: RecordedRequest) -> Reply:
    if req.method == "GET" and req.path.startswith("/v1/charges/ch_rec"):
        return Reply(200, CHARGE)
    if req.method == "POST" and req.path == "/v1/refunds":
        return Reply(
            200, {"id": "re_rec", "object": "refund", "amount": 700, "charge": "ch_rec", "currency": "usd"}
        )
    if req.method == "POST" and req.path == "/v1/transfers":
        return Reply(200, {"id": "tr_rec", "object": "transfer", "amount": 900, "currency": "usd"})
    return Reply(404, {"error": {"type": "invalid_request_error", "message": "no such route"}})


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingUpstream]:
    with RecordingUpstream(vendor) as up:
        yield up


@pytest.fixture(scope="module")
def gateway_options(upstream: RecordingUpstream) -> dict[str, Any]:
    return {"upstreams": {"stripe": upstream.url}}


@pytest.fixture(scope="module")
def token(gateway: LocalGateway) -> str:
    m = Manifests()
    m.policies["agents/p"] = PolicyObject(
        "agents",
        "p",
        SpendPolicySpec.model_validate(
            {
                "vendor": "stripe",
                "dailyCapUsd": "100",
                "allow": ["POST /v1/refunds", "POST /v1/transfers"],
                "connectedAccounts": ["acct_partner"],
            }
        ),
    )
    m.keys["agents/k"] = KeyObject(
        "agents",
        "k",
        VaultKeySpec.model_validate(
            {"policyRef": {"name": "p"}, "vendorKeySecretRef": {"name": "s", "key": "k"}}
        ),
    )
    m.secrets["agents/s"] = SecretObject("agents", "s", {"k": REAL_KEY})
    return gateway.apply(m)["agents/k"]


def client(gw: LocalGateway, token: str) -> stripe.StripeClient:
    return stripe.StripeClient(token, base_addresses={"api": gw.base_url("stripe")}, max_network_retries=0)


def test_upstream_sees_the_real_key_and_never_the_vault_key(
    gateway: LocalGateway, upstream: RecordingUpstream, token: str
) -> None:
    upstream.clear()
    client(gateway, token).v1.refunds.create(
        params={"charge": "ch_rec", "amount": 700}, options={"headers": {"X-Agent-Run-Id": "run-42"}}
    )
    lookup, refund = upstream.wait_for(2)
    assert (lookup.method, lookup.path) == ("GET", "/v1/charges/ch_rec")  # the gateway's own read
    assert (refund.method, refund.path) == ("POST", "/v1/refunds")  # prefix stripped
    for req in (lookup, refund):
        assert req.header("authorization") == f"Bearer {REAL_KEY}"
        wire = json.dumps(req.raw_headers) + req.body.decode()
        assert token not in wire
        assert not any(k.lower().startswith("x-envoy") for k, _ in req.raw_headers)
    assert refund.body == b"charge=ch_rec&amount=700"


def test_basic_auth_with_the_vault_key_is_swapped_too(
    gateway: LocalGateway, upstream: RecordingUpstream, token: str
) -> None:
    import httpx

    upstream.clear()
    r = httpx.post(
        f"{gateway.base_url()}/v1/transfers",
        auth=(token, ""),
        data={"amount": "900", "currency": "usd", "destination": "acct_partner"},
    )
    assert r.status_code == 200, r.text
    (req,) = upstream.wait_for(1)
    assert req.header("authorization") == f"Bearer {REAL_KEY}"


def test_a_transfer_to_an_unlisted_destination_is_refused(
    gateway: LocalGateway, upstream: RecordingUpstream, token: str
) -> None:
    upstream.clear()
    with pytest.raises(stripe.PermissionError) as exc:
        client(gateway, token).v1.transfers.create(
            params={"amount": 900, "currency": "usd", "destination": "acct_stranger"}
        )
    assert exc.value.error.code == "tollgate_account_not_allowed"
    assert upstream.requests == []


def test_every_call_is_in_the_access_log_with_its_decision_and_no_secret(
    gateway: LocalGateway, upstream: RecordingUpstream, token: str
) -> None:
    c = client(gateway, token)
    c.v1.refunds.create(
        params={"charge": "ch_rec", "amount": 100}, options={"headers": {"X-Agent-Run-Id": "run-log"}}
    )
    with pytest.raises(stripe.PermissionError):
        c.v1.customers.create(options={"headers": {"X-Agent-Run-Id": "run-log"}})
    gateway.envoy.stop()  # flushes the access log  # type: ignore[union-attr]
    gateway.start_envoy()
    lines = [json.loads(line) for line in gateway.access_log.read_text().splitlines() if line.strip()]
    mine = [entry for entry in lines if "run-log" in json.dumps(entry)]
    assert len(mine) == 2
    text = json.dumps(mine)
    assert '"allow"' in text and '"deny"' in text
    assert "tollgate_endpoint_not_allowed" in text
    # no log Tollgate writes holds the vault token or the vendor key
    for log in gateway.workdir.glob("*.log"):
        content = log.read_text()
        assert token not in content, log.name
        assert REAL_KEY not in content, log.name
