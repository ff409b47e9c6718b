"""Process settings, from the environment (TOLLGATE_<SECTION>__<FIELD>). Built once per entry point."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class RedisSettings(BaseModel):
    url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Redis URL: redis://, rediss:// (TLS), redis+cluster://h:p,h:p or "
        "redis+sentinel://h:p,h:p/<master> (see store/connection.py).",
    )
    timeout_ms: int = Field(
        default=500, ge=10, description="Per-command timeout; a timeout denies (fail closed)."
    )
    audited: bool = Field(
        default=True,
        description="An audit ingester keeps the spend ledger and marks each key once Redis holds its "
        "spend from it (money calls wait for the mark). false: no audit runs; grants are marked as "
        "they are written, and spend lives only in Redis.",
    )
    replica_acks: int = Field(
        default=0,
        ge=0,
        description="Replicas that must hold a reservation before its call passes (WAIT after the commit); "
        "0 trusts asynchronous replication, which a failover can undo. Fewer acks in time deny.",
    )
    replica_ack_timeout_ms: int = Field(default=50, ge=1, description="How long WAIT waits for replica_acks.")
    autopipeline: bool = Field(
        default=True,
        description="Commits that concurrent checks make while one round trip is in flight share the next "
        "(one pipeline, each script still atomic alone; store/autopipeline.py). One Redis only: a cluster "
        "and replica_acks send each commit alone.",
    )


class ExtAuthzSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=9001, ge=1, le=65535)
    vendor_urls: dict[str, str] | None = Field(
        default=None,
        description="Base URL per vendor for the gateway's own reads (full-refund amounts, customers of "
        "objects); unset: each vendor's own (tollgate.vendors.default_urls, read by ext_authz).",
    )
    metrics_port: int = Field(
        default=0, ge=0, le=65535, description="Prometheus /metrics port; 0 turns it off."
    )
    health_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="How often Redis is pinged for readiness (gRPC health, the Pod's probe).",
    )
    lookup_timeout_s: float = Field(default=5.0, gt=0)
    lookup_cache_size: int = Field(default=10_000, ge=0)


class CredentialSettings(BaseModel):
    keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Fernet keys sealing vendor keys in Redis, newest first (comma-separated in the environment).",
    )

    @field_validator("keys", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        if isinstance(v, str):
            return [k.strip() for k in v.split(",") if k.strip()]
        return v

    def plain(self) -> list[str]:
        return [k.get_secret_value() for k in self.keys]


class AuditSettings(BaseModel):
    url: str = Field(default="sqlite:///tollgate-audit.db", description="sqlite:///file.db or postgresql://…")
    log_path: str = Field(
        default="/var/log/tollgate/access.log", description="Envoy's JSON access log to ingest."
    )
    redact_params: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Parameter names (comma-separated) whose values the audit never holds, on top of each "
        "vendor's own list (card numbers, bank details, message bodies).",
    )

    @field_validator("redact_params", mode="before")
    @classmethod
    def _split_names(cls, v: object) -> object:
        return [n.strip() for n in v.split(",") if n.strip()] if isinstance(v, str) else v


class AlertSettings(BaseModel):
    slack_webhook_url: SecretStr | None = Field(
        default=None, description="Slack-compatible incoming webhook; alerts are off without one."
    )
    cap_warn_percent: int = Field(
        default=80, ge=1, le=99, description="Warn once a key has spent this share of its cap."
    )
    denial_burst: int = Field(
        default=10, ge=2, description="Denials from one key within the window that raise an alert."
    )
    denial_burst_window_s: int = Field(default=60, ge=1)
    timeout_s: float = Field(default=5.0, gt=0)
    attempts: int = Field(default=5, ge=1, description="Delivery attempts, with exponential backoff.")

    @field_validator("slack_webhook_url", mode="before")
    @classmethod
    def _empty_is_off(cls, v: object) -> object:
        return None if v in ("", None) else v


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOLLGATE_", env_nested_delimiter="__", extra="ignore")

    redis: RedisSettings = Field(default_factory=RedisSettings)
    extauthz: ExtAuthzSettings = Field(default_factory=ExtAuthzSettings)
    credentials: CredentialSettings = Field(default_factory=CredentialSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text", description="text for people; json: one JSON object per line, for log pipelines."
    )
