"""Resend: everything Tollgate knows about api.resend.com (sending email), behind the Vendor seam. Pure.

Resend authenticates with `Authorization: Bearer re_…`; the agent's SDK holds the vault token there, and
the Secret the VaultKey points at holds the real `re_…` key, sent upstream in its place. A retry under
the same `Idempotency-Key` is not sent twice by Resend, so it is not counted twice either.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tollgate.policy.rules import ParamValue
from tollgate.vendors import wire
from tollgate.vendors.base import (
    Delivery,
    Denial,
    Endpoint,
    Facts,
    Found,
    Invalid,
    Need,
    Rendered,
    Settlement,
    Unpriced,
    Vendor,
    post_idempotency_key,
)
from tollgate.vendors.observed import Observed
from tollgate.vendors.resend import endpoints, errors, outcome, params, redact
from tollgate.vendors.resend import facts as _facts
from tollgate.vendors.resend import observed as _observed
from tollgate.vendors.resend.policy import POLICY


class ResendVendor(Vendor):
    name = "resend"
    default_urls = MappingProxyType({"api": "https://api.resend.com"})
    policy = POLICY
    routes = endpoints.ROUTES
    redacted = redact.REDACTED
    captured = _observed.CAPTURED

    def observed(self, fields: Mapping[str, object]) -> Observed:
        return _observed.observed(fields)

    def vault_token(self, headers: Mapping[str, str]) -> str | None:
        return wire.bearer_token(headers)

    def parse_params(self, w: wire.Wire) -> dict[str, ParamValue]:
        return params.parse(w)

    def match(self, method: str, path: str) -> Endpoint:
        return endpoints.match(method, path)

    def facts(
        self,
        endpoint: Endpoint,
        params: Mapping[str, ParamValue],
        headers: Mapping[str, str],
        found: Found,
        scope_customers: bool,
    ) -> Facts | Need | Invalid | Unpriced:
        return _facts.facts(endpoint, params)

    def upstream_headers(self, vendor_key: str, headers: Mapping[str, str]) -> dict[str, str]:
        return {"authorization": f"Bearer {vendor_key}"}

    def deny(self, denial: Denial) -> Rendered:
        return errors.render(denial)

    def settlement(self, delivery: Delivery) -> Settlement:
        return outcome.settlement(delivery)

    def idempotency_key(self, method: str, headers: Mapping[str, str]) -> str | None:
        # Resend sends an email once per `Idempotency-Key` (POST /emails and /emails/batch, 24 hours) and
        # answers retries with the first response; other writes ignore the header, and those are unpriced.
        return post_idempotency_key(method, headers)


RESEND = ResendVendor()
