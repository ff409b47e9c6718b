"""BudgetReader: where reconcile finds the SpendBudget a policy's budgetRef names. Local mode reads the
manifests; the operator keeps the cluster's budgets in memory from its SpendBudget handlers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from tollgate.policy.spend_budget import SpendBudgetSpec


class BudgetReader(Protocol):
    async def read(self, namespace: str, name: str) -> SpendBudgetSpec | None:
        """The budget's spec; None when it does not exist or is invalid (its keys are then refused)."""
        ...


class HeldBudgets:
    """Budgets held in memory by id ("namespace/name"): the manifests' in local mode, and in the operator
    what its SpendBudget handlers last saw valid."""

    def __init__(self, budgets: Mapping[str, SpendBudgetSpec] | None = None) -> None:
        self.budgets: dict[str, SpendBudgetSpec] = dict(budgets or {})

    async def read(self, namespace: str, name: str) -> SpendBudgetSpec | None:
        return self.budgets.get(f"{namespace}/{name}")


NO_BUDGETS = HeldBudgets()
