"""The access log is rotated under a live Envoy without losing or doubling a row."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from tests.e2e.conftest import Deploy
from tests.e2e.test_audit_trail import eventually, rows

from tollgate.local.gateway import LocalGateway

ROTATE_BYTES = 4096  # a few access-log lines


@pytest.fixture(scope="module")
def gateway_options() -> dict[str, Any]:
    return {"localstripe": True, "audit_rotate_bytes": ROTATE_BYTES}


def test_every_call_is_one_row_across_many_rotations(
    direct: stripe.StripeClient, deploy: Deploy, gateway: LocalGateway
) -> None:
    agent = deploy({"dailyCapUsd": "0", "allow": ["GET /v1/balance"]})
    run = "run-rotation"
    opts: Any = {"headers": {"X-Agent-Run-Id": run}}
    calls = 120
    for i in range(calls):
        if i % 2:
            with pytest.raises(stripe.PermissionError):
                agent.v1.payouts.list(options=opts)
        else:
            agent.v1.balance.retrieve(options=opts)
        if i % 20 == 19:  # let the auditor catch up, which is when it may rotate
            eventually(lambda n=i + 1: len(rows(gateway, "agent_run_id = :run", {"run": run})) >= n, 30)

    got = eventually(lambda: len(r := rows(gateway, "agent_run_id = :run", {"run": run})) >= calls and r, 30)
    assert len(got) == calls  # none lost, none doubled
    assert len({r["row_id"] for r in got}) == calls
    assert sum(r["decision"] == "allow" for r in got) == calls // 2
    rotations = (gateway.workdir / "audit.log").read_text().count("rotated access log")
    assert rotations >= 3, "the log should have been rotated several times"
    # What is left on disk is the last batch or two, not every line (each line is ~800 bytes; Envoy opens
    # the new file lazily, so it may not exist yet).
    logs = (gateway.access_log, gateway.access_log.with_name("access.log.1"))
    on_disk = sum(log.stat().st_size for log in logs if log.exists())
    assert on_disk < calls * 800 / 2
