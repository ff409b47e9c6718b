"""The operator's settings, from the environment: the shared sections (TOLLGATE_REDIS__*,
TOLLGATE_CREDENTIALS__*, TOLLGATE_LOG_LEVEL) plus its own (TOLLGATE_OPERATOR__*)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from tollgate.settings import Settings
from tollgate_operator.confinement import ConfinementSettings


class OperatorSettings(BaseModel):
    namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces to serve (JSON list in the environment); every namespace when empty.",
    )
    status_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="How often each VaultKey's and SpendPolicy's status is refreshed from Redis (spend, last decision).",
    )
    resync_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="How often grants missing from Redis are restored and grants with no VaultKey revoked.",
    )
    peering: str | None = Field(
        default=None,
        description="kopf peering object for several replicas (one active at a time); standalone when unset.",
    )
    liveness_endpoint: str | None = Field(
        default=None, description="kopf's health endpoint, e.g. http://0.0.0.0:8080/healthz; none when unset."
    )
    confinement: ConfinementSettings | None = Field(
        default=None,
        description="Keep an egress NetworkPolicy (Envoy and DNS only) in every agent namespace (JSON in "
        "the environment); off when unset, since only the installer knows where Envoy runs.",
    )


class ProcessSettings(Settings):
    """tollgate.settings.Settings plus the operator section, read from the same environment."""

    operator: OperatorSettings = Field(default_factory=OperatorSettings)


def status_interval_s() -> float:
    """The status refresh interval alone, for the timers' decorators: kopf fixes a timer's interval when
    its handler is registered (at import), before any entry point could pass settings down."""
    return ProcessSettings().operator.status_interval_s


def confinement_settings() -> ConfinementSettings | None:
    """Read at import for the same reason: the namespace and NetworkPolicy watches are registered only
    when confinement is on, so an operator without it neither watches nor needs the RBAC for them."""
    return ProcessSettings().operator.confinement
