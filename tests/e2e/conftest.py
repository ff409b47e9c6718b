"""The gateway e2e tests drive: redis-server, the ext_authz process, Envoy and the audit, as local mode runs
them (tests/support/gateways.py, which the operator tier starts its gateways with too). One is shared by
the session, with localstripe as the Stripe upstream; tests load their own manifests into it and drive it
with the official SDKs. A module that needs another gateway (a recording upstream, manifests from a
folder, persistence) says so by overriding `gateway_options`, and gets its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import stripe
from tests.support.gateways import running_gateway
from tests.support.recorder import RecordingUpstream, Reply
from tests.support.world import empty_world

from tollgate.local.gateway import LocalGateway
from tollgate.policy.manifests import KeyObject, Manifests, PolicyObject, SecretObject
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.policy.vault_key import VaultKeySpec

REAL_KEY = "sk_test_tollgate_real_vendor_key"
NAMESPACE = "agents"


@pytest.fixture(scope="session")
def alert_sink() -> Iterator[RecordingUpstream]:
    """Where the gateway's audit sends its Slack-compatible alerts."""
    with RecordingUpstream(Reply(200, {"ok": True})) as sink:
        yield sink


@pytest.fixture(scope="session")
def shared_gateway(
    tmp_path_factory: pytest.TempPathFactory, alert_sink: RecordingUpstream
) -> Iterator[LocalGateway]:
    options = {
        "localstripe": True,
        "alerts_webhook_url": alert_sink.url,
        # The 200-way races queue 200 Checks on one ext_authz process; on a busy 2-core machine the last of
        # them can take over a second. What they prove is the cap, not the latency (that is bench/'s job),
        # so Envoy waits longer here than the production default before failing closed.
        "extauthz_timeout_ms": 5000,
    }
    with running_gateway(tmp_path_factory, "gateway", options) as gw:
        yield gw


@pytest.fixture(scope="module")
def gateway_options() -> dict[str, Any]:
    """GatewayOptions fields for this module's own gateway (upstreams, manifests, persist, …), plus `env`:
    variables set while it starts, as a person exports them before `tollgate local`. Empty (the default):
    the module runs against the shared gateway."""
    return {}


@pytest.fixture(scope="module")
def gateway(
    request: pytest.FixtureRequest, gateway_options: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalGateway]:
    if not gateway_options:
        yield request.getfixturevalue("shared_gateway")
        return
    with running_gateway(tmp_path_factory, request.module.__name__.rpartition(".")[2], gateway_options) as gw:
        yield gw


@pytest.fixture
def direct(gateway: LocalGateway) -> stripe.StripeClient:
    """The platform's own client, straight to the Stripe fake (no gateway), to set up and inspect.

    Requesting it starts a test from an empty world: no Stripe objects, no grants, no spend, and no
    audit rows (the ledger Redis's spend would otherwise be rebuilt from)."""
    httpx.delete(f"{gateway.upstreams['stripe']}/_config/data").raise_for_status()
    empty_world(gateway)
    return stripe.StripeClient(REAL_KEY, base_addresses={"api": gateway.upstreams["stripe"]})


Deploy = Callable[..., stripe.StripeClient]


@pytest.fixture
def deploy(gateway: LocalGateway) -> Deploy:
    """Apply one SpendPolicy + VaultKey and return a stripe client holding only the vault key."""

    def _deploy(
        policy: dict[str, Any], key: dict[str, Any] | None = None, **client: Any
    ) -> stripe.StripeClient:
        m = Manifests()
        m.policies[f"{NAMESPACE}/bot-policy"] = PolicyObject(
            NAMESPACE, "bot-policy", SpendPolicySpec.model_validate({"vendor": "stripe", **policy})
        )
        m.keys[f"{NAMESPACE}/bot"] = KeyObject(
            NAMESPACE,
            "bot",
            VaultKeySpec.model_validate(
                {
                    "policyRef": {"name": "bot-policy"},
                    "vendorKeySecretRef": {"name": "stripe-key", "key": "api-key"},
                    **(key or {}),
                }
            ),
        )
        m.secrets[f"{NAMESPACE}/stripe-key"] = SecretObject(NAMESPACE, "stripe-key", {"api-key": REAL_KEY})
        tokens = gateway.apply(m)
        token = tokens[f"{NAMESPACE}/bot"]
        return stripe.StripeClient(token, base_addresses={"api": gateway.base_url("stripe")}, **client)

    return _deploy
