"""The store's tests for one Redis, run unchanged against a real Redis Cluster (the `store` fixture of
this folder): every Lua script (commit, settle, release, approval), the 200-way cap race, idempotent
replays, the loop breaker, approvals (created, decided and consumed), shared budgets (a key moving into
and out of one, an approval under one), revoke on the next call and resync. A script whose keys sit in
two slots fails here with CROSSSLOT. Tests that open their own single-node client (they take
`redis_server`) stay single-node."""

from __future__ import annotations

import inspect

from tests.integration import (
    test_reconcile_budgets,
    test_reconcile_resync,
    test_store,
    test_store_approvals,
    test_store_approvals_budgets,
    test_store_budgets,
    test_store_limits,
)


def _portable(module: object) -> dict[str, object]:
    return {
        name: fn
        for name, fn in vars(module).items()
        if name.startswith("test_") and "redis_server" not in inspect.signature(fn).parameters
    }


for _module in (
    test_store,
    test_store_limits,
    test_store_approvals,
    test_store_budgets,
    test_store_approvals_budgets,
    test_reconcile_resync,
    test_reconcile_budgets,
):
    globals().update(_portable(_module))
