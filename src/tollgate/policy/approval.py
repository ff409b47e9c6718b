"""SpendApprovalSpec: the shape of `spec` on a tollgate.dev/v1alpha1 SpendApproval. Pure.

A SpendApproval is not written by people: the operator mirrors each approval ext_authz records in Redis
(a call above a SpendPolicy's spec.approval.aboveUsd) as one, so a person can see what the agent asked
for and decide with `kubectl annotate spendapproval <id> tollgate.dev/decision=approve|reject`.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from tollgate.policy.spend_policy import Spec

DECISION_ANNOTATION = "tollgate.dev/decision"  # approve | reject
DECIDED_BY_ANNOTATION = "tollgate.dev/decided-by"  # optional: who, for the audit


class SpendApprovalSpec(Spec):
    """A call that waits for a person's approval, as the agent sent it (parameters redacted as in the audit)."""

    vault_key: str = Field(description="The VaultKey the call was made with (same namespace).")
    policy: str = Field(description="The SpendPolicy whose spec.approval the call is above (namespace/name).")
    vendor: str = Field(description="The vendor the call is for.")
    method: str = Field(description="HTTP method.")
    path: str = Field(description="Path at the vendor.")
    endpoint: str = Field(description="The vendor operation, e.g. refunds.create.")
    amount_usd: str = Field(
        description="What the call costs, in USD, as reserved against the cap if it passes."
    )
    idempotency_key: str = Field(description="The Idempotency-Key the agent must retry with.")
    connected_accounts: list[str] = Field(default_factory=list, description="Connected accounts it acts on.")
    customers: list[str] = Field(default_factory=list, description="Customers or recipients it touches.")
    params: str = Field(default="{}", description="The call's parameters, redacted, as JSON.")
    agent_run_id: str | None = Field(default=None, description="The agent's X-Agent-Run-Id, if it sent one.")
    requested_at: datetime = Field(description="When the call first arrived.")
