"""Start a test from an empty world on a shared gateway: no grants, no spend, and no audit rows.

Redis alone is not enough: its spend is a copy of the audit ledger, so after a FLUSHALL the audit would
give a key of the same name its earlier spend back. Everything already logged is audited first, so no
late line of an earlier test lands in the next one."""

from __future__ import annotations

import redis
from sqlalchemy import text

from tollgate.audit.sql import AuditStore
from tollgate.local.gateway import LocalGateway


def empty_world(gateway: LocalGateway) -> None:
    if gateway.options.audit:
        gateway.wait_audited()
    with redis.Redis.from_url(gateway.redis_url) as r:
        r.flushall()
    if gateway.options.audit:
        audit = AuditStore.from_url(gateway.audit_url)
        with audit.engine.begin() as conn:
            conn.execute(text("DELETE FROM tollgate_calls"))
        audit.dispose()
