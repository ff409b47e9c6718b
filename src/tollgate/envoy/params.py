"""EnvoyParams: everything that differs between one Tollgate Envoy and another, validated up front so
that `render` never has to guess."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Used inside Envoy cluster and route names, so keep it to what reads well there.
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
# One or more plain path segments; no trailing slash ("/stripe", "/v1/twilio").
_PREFIX = re.compile(r"^(/[A-Za-z0-9_~.-]+)+$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# A member of a vendor's JSON answer Envoy keeps: written into the Lua filter as a quoted key.
_CAPTURED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class VendorUpstream(BaseModel):
    """A vendor API reachable behind the gateway at `<prefix>/…`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        description="Vendor id, e.g. 'stripe'; the authz server reads it from context_extensions."
    )
    prefix: str = Field(description="Path prefix on the gateway, e.g. '/stripe'; stripped before forwarding.")
    url: str = Field(description="Vendor base URL, 'https://api.stripe.com' or 'http://127.0.0.1:12111'.")

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not _NAME.fullmatch(v):
            raise ValueError(
                f"vendor name {v!r} must be lowercase letters, digits, '-' or '_', starting with a letter"
            )
        return v

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"prefix {v!r} must start with '/'")
        if v.endswith("/"):
            raise ValueError(f"prefix {v!r} must not end with '/' (write '/stripe', not '/stripe/')")
        if not _PREFIX.fullmatch(v):
            raise ValueError(f"prefix {v!r} may only hold path segments of letters, digits and '-._~'")
        # Envoy normalises '.' and '..' away before routing, so such a prefix could never match.
        if any(seg in (".", "..") for seg in v.split("/")):
            raise ValueError(f"prefix {v!r} must not contain '.' or '..' segments")
        return v

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in _DEFAULT_PORTS:
            raise ValueError(f"url {v!r} must start with http:// or https://")
        if not parts.hostname:
            raise ValueError(f"url {v!r} has no host")
        if parts.username or parts.password:
            raise ValueError(f"url {v!r} must not carry credentials")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            # The prefix is rewritten to '/', so a base path would silently be dropped.
            raise ValueError(f"url {v!r} must be scheme://host[:port] with no path, query or fragment")
        try:
            _ = parts.port
        except ValueError as e:
            raise ValueError(f"url {v!r} has an invalid port") from e
        return v.rstrip("/")

    @property
    def vendor(self) -> str:
        """The vendor module that judges this upstream: `stripe-files` is Stripe's second host."""
        return self.name.partition("-")[0]

    @property
    def api(self) -> str:
        """Which of the vendor's hosts this is: "api", or what follows the '-' (`stripe-files` → "files")."""
        return self.name.partition("-")[2] or "api"

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "https"

    @property
    def host(self) -> str:
        host = urlsplit(self.url).hostname
        assert host is not None  # checked by the validator
        return host

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or _DEFAULT_PORTS[parts.scheme]

    @property
    def authority(self) -> str:
        """The Host header the vendor expects: the host, plus the port when it is not the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = _DEFAULT_PORTS["https" if self.tls else "http"]
        return host if self.port == default else f"{host}:{self.port}"


class LocalReply(BaseModel):
    """How Envoy words an answer it gives by itself (a 400 for malformed HTTP, a 413, a 503 while
    ext_authz is down): the vendor's error JSON, so the agent's SDK can read it. Built from the vendor
    modules (tollgate.vendors.envoy_replies); Envoy fills command operators such as
    %RESPONSE_CODE_DETAILS% inside the body's strings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: int = Field(ge=100, le=599, description="The status Envoy answered with.")
    prefix: str | None = Field(
        default=None, description="Only requests under this vendor prefix; None: any request (the fallback)."
    )
    body: dict[str, Any]
    status_override: int | None = Field(default=None, ge=100, le=599)
    headers: dict[str, str] = Field(default_factory=dict)


def parse_host_port(endpoint: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' → (host, port); ValueError with the offending text otherwise."""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^:\[\]/\s]+):(\d+)", endpoint)
    if not m:
        raise ValueError(f"endpoint {endpoint!r} must be 'host:port'")
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if not 1 <= port <= 65535:
        raise ValueError(f"endpoint {endpoint!r} has port {port} outside 1-65535")
    return host, port


class EnvoyParams(BaseModel):
    """Inputs of `tollgate.envoy.render.render`. Production and tests differ only in the vendor URLs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen_address: str = "127.0.0.1"
    listen_port: int = Field(default=10000, ge=1, le=65535)
    admin_address: str = "127.0.0.1"
    admin_port: int | None = Field(default=None, ge=1, le=65535, description="No admin interface when unset.")
    extauthz_endpoints: list[str] = Field(description="'host:port' of each ext_authz process; round robin.")
    extauthz_timeout_ms: int = Field(default=1000, ge=1, le=60_000)
    extauthz_health_check: bool = Field(
        default=True,
        description="gRPC health-check the ext_authz endpoints so a draining process leaves the rotation.",
    )
    max_request_bytes: int = Field(
        default=1_048_576, ge=1, le=64 * 1_048_576, description="Larger bodies get 413 and are never sent."
    )
    upstream_timeout_s: int = Field(default=80, ge=1, le=3600)
    request_timeout_s: int = Field(
        default=60,
        ge=1,
        le=3600,
        description="The whole request must arrive within this time (a body shorter than its Content-Length "
        "is answered 408, not held open).",
    )
    local_replies: list[LocalReply] = Field(default_factory=list)
    captured_fields: frozenset[str] = Field(
        description="Top-level members of the vendors' JSON answers Envoy writes to the access log (what "
        "each vendor's `observed` reads: tollgate.vendors.captured_fields()); scalars that name an object or "
        "money, never a secret."
    )
    max_downstream_connections: int = Field(default=50_000, ge=1)
    ca_bundle: str = "/etc/ssl/certs/ca-certificates.crt"
    access_log_path: str = "/dev/stdout"
    vendors: list[VendorUpstream]

    @field_validator("extauthz_endpoints")
    @classmethod
    def _check_endpoints(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError(
                "at least one ext_authz endpoint is required (the gateway fails closed without one)"
            )
        for endpoint in v:
            parse_host_port(endpoint)
        if len(set(v)) != len(v):
            raise ValueError(f"ext_authz endpoints are listed twice: {v}")
        return v

    @field_validator("captured_fields")
    @classmethod
    def _check_captured(cls, v: frozenset[str]) -> frozenset[str]:
        for name in sorted(v):
            if not _CAPTURED.fullmatch(name):
                raise ValueError(
                    f"captured field {name!r} must be a JSON member name of letters, digits and '_'"
                )
        return v

    @field_validator("access_log_path", "ca_bundle", "listen_address", "admin_address")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @model_validator(mode="after")
    def _check_vendors(self) -> EnvoyParams:
        if not self.vendors:
            raise ValueError("at least one vendor upstream is required")
        for attr in ("name", "prefix"):
            seen: set[str] = set()
            for vendor in self.vendors:
                value = getattr(vendor, attr)
                if value in seen:
                    raise ValueError(f"vendor {attr} {value!r} is used twice; each vendor needs its own")
                seen.add(value)
        # Routes match in order: '/stripe' would swallow '/stripe/connect', so refuse nesting outright.
        for a in self.vendors:
            for b in self.vendors:
                if a is not b and b.prefix.startswith(a.prefix + "/"):
                    raise ValueError(f"vendor prefix {b.prefix!r} is nested under {a.prefix!r}")
        if self.admin_port is not None and self.admin_port == self.listen_port:
            raise ValueError(f"admin_port and listen_port are both {self.listen_port}")
        return self

    def extauthz_hosts(self) -> list[tuple[str, int]]:
        return [parse_host_port(e) for e in self.extauthz_endpoints]
