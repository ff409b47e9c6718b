"""Restricted-key picker: agent use cases → the least Stripe restricted-key permissions, their blast radius,
and a SpendPolicy to match. Pure, apart from reading the packaged data file once.

All Stripe knowledge is in permissions.yaml next to this module; this code only interprets it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tollgate.policy.manifests import GROUP_VERSION
from tollgate.policy.rules import EndpointPattern, ParamRule
from tollgate.policy.spend_policy import SpendPolicySpec

DATA_FILE = "permissions.yaml"
VENDOR = "stripe"  # the policies the picker writes and checks
# A wanted pattern with method "*" must be covered for every method a Stripe endpoint can have.
_CONCRETE_METHODS = ("GET", "POST", "DELETE")
BANDS = ((30, "high"), (10, "medium"), (0, "low"))


class Level(StrEnum):
    READ = "read"
    WRITE = "write"


class Permission(BaseModel):
    """One restricted-key permission, e.g. resource `charge` at `write` (Stripe's `charge_write`)."""

    model_config = ConfigDict(frozen=True)

    resource: str
    level: Level

    @classmethod
    def parse(cls, text: str) -> Permission:
        """Accept `charge:write` or Stripe's own `charge_write`."""
        resource, sep, level = text.strip().rpartition(":")
        if not sep:
            resource, sep, level = text.strip().rpartition("_")
        if not sep or not resource or level not in (Level.READ, Level.WRITE):
            raise ValueError(f"{text!r} is not a permission like 'charge:write' or 'charge_read'")
        return cls(resource=resource, level=Level(level))

    @property
    def name(self) -> str:
        return f"{self.resource}_{self.level}"

    def satisfies(self, other: Permission) -> bool:
        """Write grants read on the same resource, as in Stripe."""
        return self.resource == other.resource and (self.level is Level.WRITE or other.level is Level.READ)


class Resource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(description="The row's name in the Dashboard's restricted-key form.")
    read_weight: int = Field(ge=0)
    write_weight: int = Field(ge=0)
    irreversible: bool = False
    read: list[EndpointPattern]
    write: list[EndpointPattern]

    def patterns(self, level: Level) -> list[EndpointPattern]:
        return self.read + self.write if level is Level.WRITE else self.read

    def weight(self, level: Level) -> int:
        return self.write_weight if level is Level.WRITE else self.read_weight


class Dangerous(BaseModel):
    """Permissions that together let a leaked key move cash out for good."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requires: list[Permission] = Field(min_length=2)
    penalty: int = Field(gt=0)
    why: str

    @field_validator("requires", mode="before")
    @classmethod
    def _parse(cls, v: object) -> object:
        return [Permission.parse(x) if isinstance(x, str) else x for x in v] if isinstance(v, list) else v

    def fires(self, granted: Iterable[Permission]) -> bool:
        held = list(granted)
        return all(any(g.satisfies(r) for g in held) for r in self.requires)


class UseCase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str
    daily_cap_usd: str
    allow: list[EndpointPattern] = Field(min_length=1)
    params: list[ParamRule] = Field(default_factory=list)


class Catalog(BaseModel):
    """The parsed data file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resources: dict[str, Resource]
    dangerous: list[Dangerous]
    use_cases: dict[str, UseCase]

    @model_validator(mode="after")
    def _known_resources(self) -> Catalog:
        for d in self.dangerous:
            for p in d.requires:
                if p.resource not in self.resources:
                    raise ValueError(f"dangerous combination names unknown resource {p.resource!r}")
        return self

    def use_case(self, name: str) -> UseCase:
        try:
            return self.use_cases[name]
        except KeyError:
            raise UnknownUseCase(name, sorted(self.use_cases)) from None

    def granted_patterns(self, permissions: Iterable[Permission]) -> list[EndpointPattern]:
        out: list[EndpointPattern] = []
        for p in permissions:
            resource = self.resources.get(p.resource)
            if resource is None:
                raise ValueError(f"unknown Stripe permission resource {p.resource!r}")
            out.extend(resource.patterns(p.level))
        return out


class UnknownUseCase(ValueError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown use case {name!r}; known: {', '.join(known)}")


class Uncovered(ValueError):
    """A use case's endpoint that no permission in the data file grants (a defect in the data)."""


@cache
def load_catalog() -> Catalog:
    text = resources.files("tollgate.vendors.stripe").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return Catalog.model_validate(yaml.safe_load(text))


def covers(granting: EndpointPattern, wanted: EndpointPattern) -> bool:
    """True when every call `wanted` matches is also matched by `granting` (pattern subsumption)."""
    if wanted.method == "*":
        return all(covers(granting, EndpointPattern(f"{m} {_path(wanted)}")) for m in _CONCRETE_METHODS)
    if granting.method not in ("*", wanted.method):
        return False
    g, w = granting.segments, wanted.segments
    for i, gs in enumerate(g):
        if gs == "**":
            return True  # the rest, of any length, whatever `wanted` has there
        if i >= len(w) or w[i] == "**":
            return False  # `wanted` reaches paths shorter or deeper than `granting` does
        if gs != "*" and gs != w[i]:
            return False  # a literal covers only itself, never a wildcard
    return len(w) == len(g)


def covered_by(patterns: Iterable[EndpointPattern], wanted: EndpointPattern) -> bool:
    """True when the union of `patterns` matches every call `wanted` matches."""
    patterns = list(patterns)
    if wanted.method == "*":  # each method may be granted by a different pattern
        return all(covered_by(patterns, EndpointPattern(f"{m} {_path(wanted)}")) for m in _CONCRETE_METHODS)
    return any(covers(p, wanted) for p in patterns)


def _path(pattern: EndpointPattern) -> str:
    return pattern.split(" ", 1)[1]


def permission_for(catalog: Catalog, endpoint: EndpointPattern) -> Permission:
    """The least-weight permission that grants `endpoint`; read is preferred to write."""
    for level in (Level.READ, Level.WRITE):
        candidates = [
            (resource.weight(level), name)
            for name, resource in catalog.resources.items()
            if covered_by(resource.patterns(level), endpoint)
        ]
        if candidates:
            return Permission(resource=min(candidates)[1], level=level)
    raise Uncovered(f"no Stripe permission in {DATA_FILE} grants {endpoint!r}")


def minimum_permissions(catalog: Catalog, endpoints: Iterable[EndpointPattern]) -> list[Permission]:
    """One permission per resource, at the highest level any endpoint needs; sorted by resource."""
    levels: dict[str, Level] = {}
    for endpoint in endpoints:
        p = permission_for(catalog, endpoint)
        if levels.get(p.resource) is not Level.WRITE:
            levels[p.resource] = p.level
    return [Permission(resource=r, level=lv) for r, lv in sorted(levels.items())]


class PairWarning(BaseModel):
    permissions: list[str]
    why: str
    penalty: int


class BlastRadius(BaseModel):
    score: int
    band: str
    parts: dict[str, int] = Field(description="Points per permission name, and per fired combination.")
    warnings: list[PairWarning]


def blast_radius(catalog: Catalog, permissions: list[Permission]) -> BlastRadius:
    """Σ weight of each granted permission + Σ penalty of each dangerous combination granted in full."""
    parts = {p.name: catalog.resources[p.resource].weight(p.level) for p in permissions}
    warnings = [
        PairWarning(permissions=[r.name for r in d.requires], why=d.why, penalty=d.penalty)
        for d in catalog.dangerous
        if d.fires(permissions)
    ]
    for w in warnings:
        parts[" + ".join(w.permissions)] = w.penalty
    score = sum(parts.values())
    band = next(name for floor, name in BANDS if score >= floor)
    return BlastRadius(score=score, band=band, parts=parts, warnings=warnings)


def union_allow(use_cases: Iterable[UseCase]) -> list[EndpointPattern]:
    seen: dict[str, EndpointPattern] = {}
    for uc in use_cases:
        for e in uc.allow:
            seen.setdefault(e, e)
    return list(seen.values())


def build_policy_spec(use_cases: list[UseCase]) -> SpendPolicySpec:
    """Allow the union of endpoints; caps add up; every use case's parameter rules are kept (each names its
    endpoints, so where two use cases share an endpoint both rules apply: the stricter one wins)."""
    params: list[ParamRule] = []
    for uc in use_cases:
        params.extend(p for p in uc.params if p not in params)
    cap = sum((Decimal(uc.daily_cap_usd) for uc in use_cases), Decimal(0))
    return SpendPolicySpec(
        vendor=VENDOR,
        daily_cap_usd=f"{cap.normalize():f}",
        allow=union_allow(use_cases),
        params=params,
    )


def policy_manifest(spec: SpendPolicySpec, name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "SpendPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec.model_dump(mode="json", by_alias=True, exclude_defaults=True),
    }


class PermissionLine(BaseModel):
    permission: str
    resource: str
    level: Level
    dashboard: str = Field(description="The Dashboard row and setting, e.g. 'Charges: Write'.")
    weight: int
    irreversible: bool


# Checked against Stripe's CLI reference and API: `stripe restricted_keys create` does not exist.
STRIPE_CLI_NOTE = (
    "The Stripe CLI has no `stripe restricted_keys create` command and the API has no endpoint that "
    "creates a restricted key: create it in the Dashboard (Developers → API keys → Create restricted key) "
    "with the permissions above. The closest CLI form declares the same permissions for a Stripe App "
    "that authenticates with a restricted key."
)


class Pick(BaseModel):
    use_cases: list[str]
    permissions: list[PermissionLine]
    stripe_cli: list[str]
    stripe_cli_note: str = STRIPE_CLI_NOTE
    blast_radius: BlastRadius
    policy: dict[str, Any]
    rule_conflicts: list[str] = Field(
        default_factory=list,
        description="Endpoints where use cases constrain the same parameter differently; both rules apply.",
    )


def pick(
    catalog: Catalog, names: list[str], *, policy_name: str | None = None, namespace: str = "default"
) -> Pick:
    if not names:
        raise ValueError("name at least one use case")
    names = list(dict.fromkeys(names))
    chosen = [catalog.use_case(n) for n in names]
    permissions = minimum_permissions(catalog, union_allow(chosen))
    spec = build_policy_spec(chosen)
    return Pick(
        use_cases=names,
        permissions=[_line(catalog, p) for p in permissions],
        stripe_cli=stripe_cli_lines(permissions, names),
        blast_radius=blast_radius(catalog, permissions),
        policy=policy_manifest(spec, policy_name or _policy_name(names), namespace),
        rule_conflicts=rule_conflicts(dict(zip(names, chosen, strict=True))),
    )


def rule_conflicts(use_cases: Mapping[str, UseCase]) -> list[str]:
    """Where two use cases put different rules on one parameter of one endpoint, the merged policy applies
    both, which can refuse calls either use case alone would make (e.g. `absent` and `in`)."""
    seen: dict[tuple[str, str], tuple[str, ParamRule]] = {}
    out: list[str] = []
    for name, uc in use_cases.items():
        for rule in uc.params:
            for endpoint in rule.endpoints or uc.allow:
                key = (endpoint, rule.field)
                first = seen.setdefault(key, (name, rule))
                if first[0] != name and first[1] != rule:
                    out.append(
                        f"{endpoint} {rule.field}: {first[0]} says '{first[1].describe()}', "
                        f"{name} says '{rule.describe()}'; both apply"
                    )
    return out


def _line(catalog: Catalog, p: Permission) -> PermissionLine:
    r = catalog.resources[p.resource]
    return PermissionLine(
        permission=p.name,
        resource=p.resource,
        level=p.level,
        dashboard=f"{r.label}: {p.level.capitalize()}",
        weight=r.weight(p.level),
        irreversible=r.irreversible and p.level is Level.WRITE,
    )


def stripe_cli_lines(permissions: list[Permission], names: list[str]) -> list[str]:
    """Stripe CLI lines granting these permissions to a Stripe App that authenticates with a restricted key.

    Stripe has no CLI or public API call that mints a restricted key; a person creates it in the Dashboard
    from the permission list. Apps using restricted-key auth declare their permissions with these commands.
    """
    purpose = f"Tollgate agent key: {', '.join(names)}"
    return ["stripe apps set api-access-type restricted_api_key"] + [
        f'stripe apps grant permission "{p.name}" "{purpose}"' for p in permissions
    ]


def _policy_name(names: list[str]) -> str:
    return "-".join(names)[:63].rstrip("-")


class PolicyGap(BaseModel):
    """An allowlist entry the key cannot serve, and the least permission that would."""

    endpoint: str
    needs: str | None


def check_policy(catalog: Catalog, spec: SpendPolicySpec, granted: list[Permission]) -> list[PolicyGap]:
    """Allowlist entries of a Stripe policy that the restricted key's permissions do not cover."""
    if spec.vendor != VENDOR:
        raise ValueError(f"only stripe policies can be checked against a restricted key, not {spec.vendor}")
    patterns = catalog.granted_patterns(granted)
    gaps = []
    for endpoint in spec.allow:
        if not covered_by(patterns, endpoint):
            gaps.append(PolicyGap(endpoint=endpoint, needs=_needs(catalog, endpoint)))
    return gaps


def _needs(catalog: Catalog, endpoint: EndpointPattern) -> str | None:
    try:
        return permission_for(catalog, endpoint).name
    except Uncovered:
        return None  # broader than any single permission, e.g. 'POST /v1/**'


def describe(result: Pick) -> Mapping[str, Any]:
    """JSON/YAML-ready form."""
    return result.model_dump(mode="json")
