"""The security tier: hostile requests, written byte for byte, through the real Envoy and ext_authz to a
recording upstream per vendor. Every test asserts what reached the vendor (usually: nothing) and, where
money is at stake, what was counted against the cap.

One gateway serves the tier; each test starts from a fresh world (`world`): new grants and tokens, no
spend, empty recordings. The vendors' recorders answer as the vendors would (Stripe's charges and
refunds, Twilio's messages, Resend's emails), so an allowed control request passes end to end."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from tests.support.gateways import running_gateway
from tests.support.raw_http import RawResponse, send
from tests.support.recorder import RecordedRequest, RecordingUpstream, Reply
from tests.support.world import empty_world

from tollgate.local.gateway import LocalGateway
from tollgate.policy.manifests import KeyObject, Manifests, PolicyObject, SecretObject
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.policy.vault_key import VaultKeySpec
from tollgate.store import keys

STRIPE_KEY = "sk_test_security_real_stripe_key"
TWILIO_SID = "AC" + "5e" * 16
TWILIO_CREDENTIAL = f"{TWILIO_SID}:real_twilio_token_security"
RESEND_KEY = "re_security_real_resend_key"
REAL_SECRETS = (STRIPE_KEY, "real_twilio_token_security", RESEND_KEY)
MAX_BODY = 64 * 1024
REQUEST_TIMEOUT_S = 2
FORM = ("content-type", "application/x-www-form-urlencoded")
JSON = ("content-type", "application/json")


def charge(cid: str, customer: str, amount: int = 5000) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": 0,
        "currency": "usd",
        "customer": customer,
    }


CHARGES = {"ch_mine": charge("ch_mine", "cus_mine"), "ch_other": charge("ch_other", "cus_other", 9000)}


def stripe(req: RecordedRequest) -> Reply:
    path = req.path.split("?", 1)[0]
    if req.method == "GET" and path.startswith("/v1/charges/"):
        found = CHARGES.get(path.rsplit("/", 1)[1])
        if found:
            return Reply(200, found)
        return Reply(404, {"error": {"type": "invalid_request_error", "message": "No such charge"}})
    if req.method == "POST" and path == "/v1/refunds":
        return Reply(
            200, {"id": "re_1", "object": "refund", "amount": 100, "currency": "usd", "status": "succeeded"}
        )
    if req.method == "GET":
        return Reply(200, {"object": "list", "data": [], "has_more": False})
    return Reply(200, {"id": "obj_1", "object": "unknown"})


def twilio(req: RecordedRequest) -> Reply:
    return Reply(201, {"sid": "SM" + "0" * 32, "account_sid": TWILIO_SID, "status": "queued"})


def resend(req: RecordedRequest) -> Reply:
    return Reply(200, {"id": "4ef9a417-02e9-4d39-ad75-9611e0fcc33c"})


def stripe_files(req: RecordedRequest) -> Reply:
    return Reply(
        200, {"id": "file_1", "object": "file", "purpose": "dispute_evidence", "size": len(req.body)}
    )


@dataclass
class Upstreams:
    stripe: RecordingUpstream
    twilio: RecordingUpstream
    resend: RecordingUpstream
    stripe_files: RecordingUpstream

    def all(self) -> list[RecordedRequest]:
        return self.stripe.requests + self.twilio.requests + self.resend.requests + self.stripe_files.requests

    def clear(self) -> None:
        for up in (self.stripe, self.twilio, self.resend, self.stripe_files):
            up.clear()


@pytest.fixture(scope="session")
def upstreams() -> Iterator[Upstreams]:
    with (
        RecordingUpstream(stripe) as s,
        RecordingUpstream(twilio) as t,
        RecordingUpstream(resend) as r,
        RecordingUpstream(stripe_files) as f,
    ):
        yield Upstreams(s, t, r, f)


@pytest.fixture(scope="session")
def gateway(upstreams: Upstreams, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalGateway]:
    options = {
        "upstreams": {
            "stripe": upstreams.stripe.url,
            "twilio": upstreams.twilio.url,
            "resend": upstreams.resend.url,
            "stripe-files": upstreams.stripe_files.url,
        },
        "max_request_bytes": MAX_BODY,
        "request_timeout_s": REQUEST_TIMEOUT_S,
    }
    with running_gateway(tmp_path_factory, "security", options) as gw:
        yield gw


def manifests() -> Manifests:
    m = Manifests()
    policies: dict[str, dict[str, Any]] = {
        "stripe": {
            "vendor": "stripe",
            "dailyCapUsd": "50",
            "allow": [
                "POST /v1/refunds",
                "POST /v1/charges",
                "GET /v1/charges",
                "GET /v1/charges/*",
                "GET /v1/balance",
                "POST /v1/files",
                "GET /v1/balance_transactions",
                "GET /v1/transfers",
                "GET /v1/payouts/*",
                "GET /v1/customers/**",
                "DELETE /v1/customers/*",
            ],
            "customers": ["cus_mine"],
            "connectedAccounts": ["acct_ours"],
        },
        "twilio": {
            "vendor": "twilio",
            "dailyCapUsd": "1",
            "allow": [
                "POST /2010-04-01/Accounts/*/Messages.json",
                "GET /2010-04-01/Accounts/*/Messages.json",
            ],
            "connectedAccounts": [TWILIO_SID],
            "recipients": ["+1415"],
        },
        "resend": {
            "vendor": "resend",
            "dailyCapUsd": "1",
            "allow": ["POST /emails", "POST /emails/batch", "GET /emails"],
            "recipients": ["example.com"],
        },
    }
    secrets = {"stripe": STRIPE_KEY, "twilio": TWILIO_CREDENTIAL, "resend": RESEND_KEY}
    for vendor, spec in policies.items():
        m.policies[f"agents/{vendor}"] = PolicyObject("agents", vendor, SpendPolicySpec.model_validate(spec))
        m.keys[f"agents/{vendor}-bot"] = KeyObject(
            "agents",
            f"{vendor}-bot",
            VaultKeySpec.model_validate(
                {"policyRef": {"name": vendor}, "vendorKeySecretRef": {"name": vendor, "key": "key"}}
            ),
        )
        m.secrets[f"agents/{vendor}"] = SecretObject("agents", vendor, {"key": secrets[vendor]})
    return m


@dataclass
class World:
    gateway: LocalGateway
    upstreams: Upstreams
    tokens: dict[str, str]  # vendor → vault token

    def send(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
        **kw: Any,
    ) -> RawResponse:
        return send(self.gateway.port, method, target, body, headers, **kw)

    def stripe(
        self, method: str, path: str, body: bytes = b"", *extra: tuple[str, str], **kw: Any
    ) -> RawResponse:
        auth = ("authorization", f"Bearer {self.tokens['stripe']}")
        return self.send(method, f"/stripe{path}", body, [auth, *extra], **kw)

    def twilio(self, body: bytes, *extra: tuple[str, str], path: str = "", **kw: Any) -> RawResponse:
        target = path or f"/twilio/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
        auth = (
            "authorization",
            "Basic " + base64.b64encode(f"{TWILIO_SID}:{self.tokens['twilio']}".encode()).decode(),
        )
        return self.send("POST", target, body, [auth, *extra], **kw)

    def resend(
        self, body: bytes, *extra: tuple[str, str], path: str = "/resend/emails", **kw: Any
    ) -> RawResponse:
        auth = ("authorization", f"Bearer {self.tokens['resend']}")
        return self.send("POST", path, body, [auth, *extra], **kw)

    def spent(self, vendor: str) -> int:
        """Micro-USD counted today against the vendor's key (reserved or settled)."""
        with redis.Redis.from_url(self.gateway.redis_url, decode_responses=True) as r:
            total = 0
            for key in r.scan_iter(f"{keys.PREFIX}{{vk:agents/{vendor}-bot}}:spend:*"):
                total += int(r.get(key) or 0)
            return total


@pytest.fixture
def world(gateway: LocalGateway, upstreams: Upstreams) -> World:
    empty_world(gateway)  # Redis and the audit ledger its spend would be rebuilt from
    tokens = gateway.apply(manifests())
    upstreams.clear()
    return World(gateway, upstreams, {v: tokens[f"agents/{v}-bot"] for v in ("stripe", "twilio", "resend")})


Check = Callable[[RawResponse], None]


def refused(r: RawResponse, status: int, rule: str, world: World) -> None:
    """Refused by ext_authz with `rule`, in the vendor's own shape, and nothing reached any vendor."""
    assert r.status == status, r.body
    assert r.headers.get("x-tollgate-rule") == rule, (r.headers, r.body)
    assert world.upstreams.all() == [], [(q.method, q.path) for q in world.upstreams.all()]
