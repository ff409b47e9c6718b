"""What every reconcile step works with, as one object: the operator builds it once at start-up, local
mode for each set of manifests, tests with fakes. Knows nothing of kopf."""

from __future__ import annotations

from dataclasses import dataclass, field

from tollgate.credentials import CredentialBox
from tollgate.reconcile.budgets import NO_BUDGETS, BudgetReader
from tollgate.reconcile.secrets import SecretReader
from tollgate.reconcile.tokens import TokenSecrets
from tollgate.store.base import GrantStore


@dataclass(frozen=True)
class ReconcileContext:
    store: GrantStore  # where grants are written and revoked
    box: CredentialBox  # seals the vendor key into the grant
    secrets: SecretReader  # reads the vendor key a VaultKey points at
    tokens: TokenSecrets  # where the agents' vault tokens live (a Secret each in a cluster)
    budgets: BudgetReader = field(default=NO_BUDGETS)  # the SpendBudgets policies name in budgetRef
