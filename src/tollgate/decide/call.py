"""Call: one agent request as the decision sees it (credentials already taken out). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field

from tollgate.policy.rules import ParamValue
from tollgate.record import record


@record
class Call:
    vendor: str
    method: str
    path: str  # normalised by Envoy, vendor prefix stripped, no query string
    params: Mapping[str, ParamValue] = field(default_factory=dict)  # body and query, merged strictly
    parse_error: str | None = None  # set when the body/query cannot be read exactly
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names; no credentials
    request_id: str = ""

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")

    @property
    def agent_run_id(self) -> str | None:
        return self.headers.get("x-agent-run-id")
