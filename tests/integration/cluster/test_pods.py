"""Scale-out as the chart runs it: two Envoy pods, each a real Envoy with two ext_authz processes, its own
access log and its own audit ingester, all on one Redis Cluster and one PostgreSQL ledger.

Payouts race through both pods against one cap while the vendor refuses a quarter of them, so
reservations are settled by one pod's ingester and released by the other's. Every call must be audited
once, every reservation settled or released once (Redis's spend is exactly what the ledger counts, and
what the vendor moved), and the cap never passed.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import text
from tests.integration.test_audit_sql import postgres_database
from tests.support.gateway_faults import manifests, today
from tests.support.recorder import RecordedRequest, RecordingUpstream, Reply
from tests.support.redis_cluster import RedisCluster

from tollgate.audit.sql import AuditStore
from tollgate.credentials import CredentialBox
from tollgate.local.gateway import GatewayOptions, LocalGateway
from tollgate.store import keys

PAYOUT = 100  # cents: $1.00, 1,000,000 micro-USD
CAP_USD = "60"
CALLS = 160  # 120 the vendor would accept: twice the cap
REFUSE = "refuse-"  # the vendor declines payouts sent under such an idempotency key
_ids = itertools.count()


def vendor(req: RecordedRequest) -> Reply:
    if req.method != "POST":
        return Reply(200, {"object": "balance", "available": []})
    if (req.header("idempotency-key") or "").startswith(REFUSE):
        return Reply(402, {"error": {"type": "card_error", "code": "card_declined", "message": "declined"}})
    return Reply(
        200,
        {"id": f"po_{next(_ids)}", "object": "payout", "amount": PAYOUT, "currency": "usd", "status": "paid"},
    )


def cluster_client(cluster: RedisCluster) -> redis.RedisCluster:
    return redis.RedisCluster(host="127.0.0.1", port=cluster.ports[0], decode_responses=True)


@pytest.fixture
def audit_url() -> Iterator[str]:
    yield from postgres_database()


@pytest.fixture
def pods(
    redis_cluster: RedisCluster, audit_url: str, tmp_path: Path
) -> Iterator[tuple[RecordingUpstream, list[LocalGateway]]]:
    with cluster_client(redis_cluster) as r:
        r.flushall()
    with RecordingUpstream(vendor) as up:
        started: list[LocalGateway] = []
        try:
            for i in range(2):
                gw = LocalGateway(
                    GatewayOptions(
                        workdir=tmp_path / f"pod-{i}",
                        redis_url=redis_cluster.url,
                        audit_url=audit_url,
                        upstreams={"stripe": up.url},
                        extauthz_procs=2,
                        extauthz_timeout_ms=5000,  # a busy 2-core machine; the cap is the point here
                        supervise=False,
                    )
                )
                if started:  # the pods share the Secret that seals vendor keys in Redis
                    gw.box_key, gw.box = started[0].box_key, CredentialBox([started[0].box_key])
                started.append(gw.start())
            yield up, started
        finally:
            for gw in started:
                gw.stop()


def test_two_envoy_pods_with_their_own_ingesters_settle_each_reservation_once_and_audit_each_call_once(
    pods: tuple[RecordingUpstream, list[LocalGateway]], redis_cluster: RedisCluster, audit_url: str
) -> None:
    up, gateways = pods
    name = f"pods-{uuid.uuid4().hex[:6]}"
    key_id = f"agents/{name}"
    token = gateways[0].apply(manifests(name, CAP_USD))[key_id]
    gateways[1].wait_ledger([key_id])  # one Redis: the key is marked for both pods

    def payout(i: int) -> int:
        idem = f"{REFUSE if i % 4 == 0 else 'ok-'}{i}-{uuid.uuid4().hex[:8]}"
        r = httpx.post(
            f"{gateways[i % 2].base_url('stripe')}/v1/payouts",
            content=f"amount={PAYOUT}&currency=usd".encode(),
            headers={
                "authorization": f"Bearer {token}",
                "content-type": "application/x-www-form-urlencoded",
                "idempotency-key": idem,
            },
            timeout=30,
        )
        return r.status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(payout, range(CALLS)))
    for gw in gateways:
        gw.wait_audited(timeout_s=30)

    posted = [r for r in up.requests if r.method == "POST"]
    paid = [r for r in posted if not str(r.header("idempotency-key")).startswith(REFUSE)]
    declined = [r for r in posted if r not in paid]
    assert statuses.count(200) == len(paid) > 0
    assert len(declined) > 0
    assert len(paid) * PAYOUT * 10_000 <= int(CAP_USD) * 1_000_000  # overshoot: 0
    assert statuses.count(402) == CALLS - len(paid)  # the vendor's declines and the cap's refusals

    audit = AuditStore.from_url(audit_url)
    try:
        for gw in gateways:  # each pod's ingester wrote its own log, to its end
            cp = audit.checkpoint(str(gw.access_log.resolve()))
            assert cp is not None and cp.offset == gw.access_log.stat().st_size > 0
        with audit.engine.connect() as c:
            rows = c.execute(
                text(
                    "SELECT decision, decision_id, request_id, rule, settlement, cost_micro_usd, settled_micro_usd,"
                    " reservation_id, vendor_status, idempotency_key FROM tollgate_calls WHERE vault_key_id = :k"
                ),
                {"k": key_id},
            ).all()
    finally:
        audit.dispose()
    assert len(rows) == CALLS  # each call audited, by one pod's ingester
    assert len({r.decision_id for r in rows}) == CALLS  # none twice
    assert len({r.idempotency_key for r in rows}) == CALLS
    reserved = [r for r in rows if r.reservation_id]
    assert len({r.reservation_id for r in reserved}) == len(reserved) == len(paid) + len(declined)
    assert {r.settlement for r in reserved if r.vendor_status == 200} == {"settled"}
    assert {r.settlement for r in reserved if r.vendor_status == 402} == {"released"}
    assert sum(r.vendor_status == 200 for r in reserved) == len(paid)
    refused_by_cap = [r for r in rows if not r.reservation_id]
    assert len(refused_by_cap) == CALLS - len(paid) - len(declined)
    assert {r.decision for r in refused_by_cap} <= {"deny"}

    counted = sum(r.settled_micro_usd or r.cost_micro_usd for r in reserved if r.settlement == "settled")
    with cluster_client(redis_cluster) as r:
        spent = int(r.get(keys.spend(key_id, "stripe", today())) or 0)
        open_reservations = [
            k for k in r.scan_iter(match=keys.reservation(key_id, "*")) if r.get(k) not in (None, "x")
        ]
    assert spent == counted == len(paid) * PAYOUT * 10_000  # each reservation settled or released once
    assert open_reservations == []
    print(
        f"\n{CALLS} payouts through 2 pods (4 ext_authz, 2 ingesters): {len(paid)} paid "
        f"(${len(paid) * PAYOUT / 100:.2f} of ${CAP_USD}), {len(declined)} declined by the vendor and released, "
        f"{len(refused_by_cap)} refused at the cap; {len(rows)} audit rows"
    )
