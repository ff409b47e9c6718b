"""What every reconcile step works with, as one object: the operator builds it once at start-up, local
mode for each set of manifests, tests with fakes. Knows nothing of kopf."""

from __future__ import annotations

from dataclasses import field
from typing import Protocol

from tollgate.credentials import CredentialBox
from tollgate.reconcile.budgets import NO_BUDGETS, BudgetReader
from tollgate.reconcile.secrets import SecretReader
from tollgate.reconcile.tokens import TokenSecrets
from tollgate.record import record
from tollgate.store.base import GrantStore


class SecretApi(SecretReader, TokenSecrets, Protocol):
    """One place that holds both the vendor keys' Secrets and the token Secrets (the API server)."""


@record
class ReconcileContext:
    store: GrantStore  # where grants are written and revoked
    box: CredentialBox  # seals the vendor key into the grant
    secrets: SecretReader  # reads the vendor key a VaultKey points at
    tokens: TokenSecrets  # where the agents' vault tokens live (a Secret each in a cluster)
    budgets: BudgetReader = field(default=NO_BUDGETS)  # the SpendBudgets policies name in budgetRef

    @classmethod
    def from_api(
        cls, store: GrantStore, box: CredentialBox, api: SecretApi, budgets: BudgetReader = NO_BUDGETS
    ) -> ReconcileContext:
        """A context whose vendor keys and tokens live side by side, as Secrets of one API server: `api`
        reads the one and writes the other."""
        return cls(store, box, secrets=api, tokens=api, budgets=budgets)
