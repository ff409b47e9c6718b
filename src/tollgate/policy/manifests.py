"""Read Kubernetes-style YAML manifests (SpendPolicy, VaultKey, SpendBudget, Secret) for local mode and `tollgate check`.

Every problem is reported with its file, object and field, and all problems are reported at once.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tollgate.policy.spend_budget import SpendBudgetSpec
from tollgate.policy.spend_policy import SpendPolicySpec
from tollgate.policy.vault_key import VaultKeySpec
from tollgate.record import record

GROUP_VERSION = "tollgate.dev/v1alpha1"
DEFAULT_NAMESPACE = "default"


@record
class PolicyObject:
    namespace: str
    name: str
    spec: SpendPolicySpec

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"


@record
class KeyObject:
    namespace: str
    name: str
    spec: VaultKeySpec

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def policy_id(self) -> str:
        return f"{self.namespace}/{self.spec.policy_ref.name}"


@record
class BudgetObject:
    namespace: str
    name: str
    spec: SpendBudgetSpec

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"


@record
class SecretObject:
    namespace: str
    name: str
    data: dict[str, str]


@dataclass
class Manifests:
    policies: dict[str, PolicyObject] = field(default_factory=dict)
    keys: dict[str, KeyObject] = field(default_factory=dict)
    secrets: dict[str, SecretObject] = field(default_factory=dict)
    budgets: dict[str, BudgetObject] = field(default_factory=dict)
    # Documents of other kinds, which are not Tollgate's to judge (a Deployment beside a policy).
    skipped: list[str] = field(default_factory=list)


class InvalidManifests(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_path(path: Path) -> Manifests:
    files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")) if path.is_dir() else [path]
    if not files:
        raise InvalidManifests([f"{path}: no .yaml or .yml files found"])
    out, problems = Manifests(), []
    for f in files:
        try:
            docs = [d for d in yaml.safe_load_all(f.read_text()) if d is not None]
        except yaml.YAMLError as exc:
            problems.append(f"{f}: not valid YAML: {exc}")
            continue
        for i, doc in enumerate(docs):
            problems.extend(add_document(out, doc, f"{f}#{i}"))
    _check_references(out, problems)
    if problems:
        raise InvalidManifests(problems)
    return out


def add_document(out: Manifests, doc: Any, where: str) -> list[str]:
    """Validate one document into `out`; returns the problems found (empty when it was added)."""
    if not isinstance(doc, dict):
        return [f"{where}: a manifest must be a mapping"]
    kind, api = doc.get("kind"), doc.get("apiVersion")
    if not _ours(kind, api):
        out.skipped.append(f"{where} ({kind or 'no kind'} {api or 'no apiVersion'})")
        return []
    meta = doc.get("metadata") or {}
    name = meta.get("name") if isinstance(meta, dict) else None
    namespace = (meta.get("namespace") if isinstance(meta, dict) else None) or DEFAULT_NAMESPACE
    if not isinstance(name, str) or not name:
        return [f"{where}: metadata.name is required"]
    label = f"{where} ({kind} {namespace}/{name})"
    if kind in ("SpendPolicy", "VaultKey", "SpendBudget"):
        if api != GROUP_VERSION:
            return [f"{label}: apiVersion must be {GROUP_VERSION}, got {api!r}"]
        models: dict[str, type[BaseModel]] = {
            "SpendPolicy": SpendPolicySpec,
            "VaultKey": VaultKeySpec,
            "SpendBudget": SpendBudgetSpec,
        }
        model = models[kind]
        try:
            spec = model.model_validate(doc.get("spec"))
        except ValidationError as exc:
            return [f"{label}: {msg}" for msg in field_errors(exc, "spec")]
        if isinstance(spec, SpendPolicySpec):
            out.policies[f"{namespace}/{name}"] = PolicyObject(namespace, name, spec)
        elif isinstance(spec, VaultKeySpec):
            out.keys[f"{namespace}/{name}"] = KeyObject(namespace, name, spec)
        elif isinstance(spec, SpendBudgetSpec):
            out.budgets[f"{namespace}/{name}"] = BudgetObject(namespace, name, spec)
        return []
    if kind == "Secret" and api == "v1":
        data, problems = _secret_data(doc, label)
        if not problems:
            out.secrets[f"{namespace}/{name}"] = SecretObject(namespace, name, data)
        return problems
    return [f"{label}: unsupported kind (expected SpendPolicy, VaultKey, SpendBudget or v1 Secret)"]


def _ours(kind: object, api: object) -> bool:
    """Tollgate's kinds (by name or API group) and v1 Secrets; anything else in the folder is not ours to judge."""
    group = api.partition("/")[0] if isinstance(api, str) else ""
    return (
        kind in ("SpendPolicy", "VaultKey", "SpendBudget")
        or group == GROUP_VERSION.partition("/")[0]
        or (kind == "Secret" and api == "v1")
    )


def field_errors(exc: ValidationError, root: str) -> list[str]:
    """pydantic errors as 'spec.field.path: message' using the YAML (camelCase) names."""
    out = []
    for err in exc.errors():
        loc = ".".join([root, *(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"])]).replace(
            ".[", "["
        )
        msg = err["msg"].removeprefix("Value error, ")
        out.append(f"{loc}: {msg}")
    return out


def _secret_data(doc: dict[str, Any], label: str) -> tuple[dict[str, str], list[str]]:
    data: dict[str, str] = {}
    for k, v in (doc.get("data") or {}).items():
        try:
            data[str(k)] = base64.b64decode(str(v), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return {}, [f"{label}: data.{k} is not base64"]
    for k, v in (doc.get("stringData") or {}).items():
        data[str(k)] = str(v)
    return data, []


def _check_references(m: Manifests, problems: list[str]) -> None:
    for key in m.keys.values():
        if key.policy_id not in m.policies:
            problems.append(
                f"VaultKey {key.id}: spec.policyRef.name: no SpendPolicy {key.policy_id} in these manifests"
            )
    for policy in m.policies.values():
        ref = policy.spec.budget_ref
        if ref is not None and f"{policy.namespace}/{ref.name}" not in m.budgets:
            problems.append(
                f"SpendPolicy {policy.id}: spec.budgetRef.name: no SpendBudget "
                f"{policy.namespace}/{ref.name} in these manifests"
            )
