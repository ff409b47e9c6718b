"""A gateway whose Stripe is a FaultyUpstream behind a TcpProxy (cut it: connection refused), with a
1 s route timeout, and the helpers the settlement tests share: raw payouts through the real Envoy, the
access-log line of each, and what Redis counts."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import redis

from tests.support import raw_http
from tollgate.local.gateway import LocalGateway
from tollgate.policy.manifests import KeyObject, Manifests, PolicyObject, SecretObject
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.policy.vault_key import VaultKeySpec
from tollgate.store import keys

REAL_KEY = "sk_test_tollgate_settlement"
PAYOUT_MICRO_USD = 10_000_000  # every payout here is $10.00
_N = itertools.count(1)


def manifests(name: str, cap_usd: str = "50") -> Manifests:
    m = Manifests()
    m.policies[f"agents/{name}-p"] = PolicyObject(
        "agents",
        f"{name}-p",
        SpendPolicySpec.model_validate(
            {"vendor": "stripe", "dailyCapUsd": cap_usd, "allow": ["POST /v1/payouts", "GET /v1/balance"]}
        ),
    )
    m.keys[f"agents/{name}"] = KeyObject(
        "agents",
        name,
        VaultKeySpec.model_validate(
            {"policyRef": {"name": f"{name}-p"}, "vendorKeySecretRef": {"name": "sk", "key": "api-key"}}
        ),
    )
    m.secrets["agents/sk"] = SecretObject("agents", "sk", {"api-key": REAL_KEY})
    return m


@dataclass
class Agent:
    gateway: LocalGateway
    key_id: str
    token: str

    def payout(self, *, idem: str | None = None, timeout: float = 10.0) -> tuple[int | None, str]:
        """POST a $10 payout; returns (status or None when this client gave up, the run id of its line)."""
        run = f"run-{uuid.uuid4().hex[:12]}"
        headers = {
            "authorization": f"Bearer {self.token}",
            "content-type": "application/x-www-form-urlencoded",
            "idempotency-key": idem or uuid.uuid4().hex,
            "x-agent-run-id": run,
        }
        try:
            r = httpx.post(
                f"{self.gateway.base_url('stripe')}/v1/payouts",
                content=b"amount=1000&currency=usd",
                headers=headers,
                timeout=timeout,
            )
        except httpx.TimeoutException:
            return None, run
        return r.status_code, run

    def payout_hanging_up(self, reached: Callable[[], bool], timeout: float = 30.0) -> str:
        """POST a $10 payout and hang up once `reached()` says the vendor has read it, while it still works
        on it: the disconnect lands after the request left, however slow this machine runs the check.
        Returns the run id of its line."""
        run = f"run-{uuid.uuid4().hex[:12]}"
        headers = [
            ("authorization", f"Bearer {self.token}"),
            ("content-type", "application/x-www-form-urlencoded"),
            ("idempotency-key", uuid.uuid4().hex),
            ("x-agent-run-id", run),
        ]
        body = b"amount=1000&currency=usd"
        with raw_http.sent(self.gateway.port, "POST", "/stripe/v1/payouts", body, headers, timeout=timeout):
            eventually(reached, timeout=timeout, what="the vendor read the payout")
        return run

    def read(self) -> int:
        r = httpx.get(
            f"{self.gateway.base_url('stripe')}/v1/balance",
            headers={"authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        return r.status_code

    def spent(self) -> int:
        with redis.Redis.from_url(self.gateway.redis_url, decode_responses=True) as r:
            return int(r.get(keys.spend(self.key_id, "stripe", today())) or 0)

    def open_reservations(self) -> int:
        with redis.Redis.from_url(self.gateway.redis_url, decode_responses=True) as r:
            found = r.keys(keys.reservation(self.key_id, "*"))
            return sum(1 for k in found if r.get(k) not in (None, "x"))


def deploy(gateway: LocalGateway, cap_usd: str = "50") -> Agent:
    name = f"bot{next(_N)}-{uuid.uuid4().hex[:6]}"
    tokens = gateway.apply(manifests(name, cap_usd))
    key_id = f"agents/{name}"
    return Agent(gateway, key_id, tokens[key_id])


def today() -> str:
    return datetime.now(UTC).strftime("%Y%m%d")


def log_line(gateway: LocalGateway, run: str, timeout: float = 10.0) -> dict[str, Any]:
    """The access-log entry of the call sent with run id `run` (Envoy writes it once the stream ends)."""
    deadline = time.monotonic() + timeout
    while True:
        for path in (gateway.access_log.with_name("access.log.1"), gateway.access_log):
            if path.exists():
                for raw in path.read_text().splitlines():
                    if run in raw:
                        entry: dict[str, Any] = json.loads(raw)
                        if entry.get("agent_run_id") == run:
                            return entry
        if time.monotonic() > deadline:
            raise AssertionError(f"no access-log line for {run} within {timeout}s")
        time.sleep(0.02)


def eventually(check: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout}s")
        time.sleep(0.01)
