"""Build the SpendPolicy, VaultKey and SpendBudget CustomResourceDefinitions (apiextensions.k8s.io/v1) from the pydantic
models. Pure: models in, dicts and YAML text out; `tollgate dev gen-crds` writes crds/ from here.

`spec` is `model_json_schema(by_alias=True)` made *structural*, the shape Kubernetes demands of a CRD schema:
`$ref`s inlined, `null` branches dropped, `str | int` as `x-kubernetes-int-or-string`, every node typed. What
pydantic checks in validator code (id shapes, endpoint grammar, cross-field rules) is restated below as OpenAPI
keywords and CEL `x-kubernetes-validations`, keyed by the field path they attach to; a path that no longer
exists in the model makes generation fail. tests/unit/policy/test_crd.py runs the CRD schema and the models
over the same good and bad specs, so the two cannot drift apart unnoticed; tests/integration/test_crd_schema.py
holds the status schema to what tollgate.reconcile.status writes.

Two things Kubernetes cannot do, by design:
- A structural schema cannot say `additionalProperties: false` beside `properties`: the API server *prunes*
  unknown fields instead of rejecting them, so a misspelled optional key vanishes at admission. `tollgate check`
  and the operator (pydantic, `extra="forbid"`) are what name it.
- An explicit `null` in `spec` is pruned too (no spec field is `nullable`), so it reads as "omitted", which is
  what pydantic's `None` default means. CEL `has()` then behaves like pydantic's `is None`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.alias_generators import to_camel

from tollgate.money import MAX_MICRO_USD, MICRO_PER_USD
from tollgate.policy import rules, vault_key
from tollgate.policy.approval import DECIDED_BY_ANNOTATION, DECISION_ANNOTATION, SpendApprovalSpec
from tollgate.policy.extension import extensions, vendors_of
from tollgate.policy.spend_budget import SpendBudgetSpec
from tollgate.policy.spend_policy import OBJECT_NAME, SpendPolicySpec
from tollgate.policy.vault_key import VaultKeySpec

GROUP = "tollgate.dev"
VERSION = "v1alpha1"
CATEGORIES = ["tollgate"]

Schema = dict[str, Any]

# rules.EndpointPattern's grammar after normalisation, in the regex subset Python and Kubernetes (RE2) share:
# a segment is a name (not "." or "..", which RE2 cannot exclude by lookahead, hence the three branches),
# "*" for one segment, and "**" only last. The model also tidies whitespace and a trailing "/"; Kubernetes
# cannot rewrite what is stored, so the CRD takes the canonical spelling only.
_SEGMENT = r"([A-Za-z0-9_.\-]*[A-Za-z0-9_\-][A-Za-z0-9_.\-]*|\.{3,}|\*)"
_METHODS = "|".join(re.escape(m) for m in rules.METHODS)
ENDPOINT_PATTERN = rf"^({_METHODS}) /({_SEGMENT}(/{_SEGMENT})*(/\*\*)?|\*\*)?$"
# money.parse_usd: a non-negative decimal, at most micro-dollar precision.
USD_PATTERN = r"^[0-9]+(\.[0-9]{1,6})?$"
MAX_USD = MAX_MICRO_USD // MICRO_PER_USD
# CurrencySpec.usd_rate: a positive decimal (a non-zero digit before or after the point).
USD_RATE_PATTERN = r"^([0-9]*[1-9][0-9]*(\.[0-9]+)?|[0-9]+\.[0-9]*[1-9][0-9]*)$"
# CurrencySpec.code is lowercased before its check, so either case is accepted here too.
CURRENCY_PATTERN = r"^[A-Za-z]{3}$"
# The shape of an IANA zone name; whether the zone exists is checked by the model only.
TIME_ZONE_PATTERN = r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$"
DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
# ISO 4217 has under 200 codes; the bound keeps the O(n²) uniqueness rule inside the CEL cost budget.
MAX_CURRENCIES = 200


def cel_rule(rule: str, message: str, field: str | None = None) -> Schema:
    out: Schema = {"rule": rule, "message": message}
    if field:
        out["fieldPath"] = f".{field}"  # so the API server names the field, as pydantic does
    return out


def _vendor_fields() -> list[str]:
    """The fields some vendors read only (snake_case), in the order the registry first names them."""
    return list(dict.fromkeys(f for ext in extensions().values() for f in ext.fields))


def _vendor_rules() -> list[Schema]:
    """spec-level rules: fields that mean something for some vendors only, and per-vendor entry shapes."""
    out = []
    for name in _vendor_fields():
        field = to_camel(name)
        vendors = vendors_of(name)
        allowed = ", ".join(f"'{v}'" for v in vendors)
        out.append(
            cel_rule(
                f"!has(self.{field}) || self.vendor in [{allowed}]",
                f"{field} applies to {' and '.join(vendors)} policies only",
                field,
            )
        )
    for vendor, ext in extensions().items():
        for name, why in ext.required.items():
            field = to_camel(name)
            out.append(
                cel_rule(
                    f"self.vendor != '{vendor}' || (has(self.{field}) && size(self.{field}) > 0)", why, field
                )
            )
    # The item patterns accept every vendor's shape; which shape is right depends on `vendor`. A prefix
    # test (cheap in CEL's cost model) is enough on top of the item pattern.
    for name in _vendor_fields():
        field = to_camel(name)
        for vendor in vendors_of(name):
            item = extensions()[vendor].items.get(name)
            if item is not None and item.cel:
                out.append(
                    cel_rule(
                        f"self.vendor != '{vendor}' || !has(self.{field}) || self.{field}.all({item.cel})",
                        item.cel_message,
                        field,
                    )
                )
    return out


def _either(*patterns: re.Pattern[str] | str) -> str:
    """One anchored pattern accepting what any of `patterns` (anchored) accepts."""
    texts = [p.pattern if isinstance(p, re.Pattern) else p for p in patterns]
    if len(texts) == 1:
        return texts[0]
    return "^(" + "|".join(t.removeprefix("^").removesuffix("$") for t in texts) + ")$"


def _vendor_items() -> dict[str, Schema]:
    """Item patterns of the vendor-dependent list fields: any vendor's shape (the CEL rules tell them apart)."""
    out: dict[str, Schema] = {}
    for name in _vendor_fields():
        shapes = [r.pattern for ext in extensions().values() if (r := ext.items.get(name)) is not None]
        if shapes:
            out[f"{to_camel(name)}[]"] = {"pattern": _either(*shapes)}
    return out


USD: Schema = {"pattern": USD_PATTERN, "minimum": 0, "maximum": MAX_USD}

# Model fields no structural type can describe, and why. Kubernetes keeps them as written and hides them
# from CEL (an untyped node is not exposed), so only pydantic checks them.
_UNTYPED: dict[str, str] = {
    "params[].value": "a string, an integer or a list of them; which one depends on `op` (checked by pydantic)",
}

# A reference to another object by name (a DNS subdomain, as Kubernetes names it).
_OBJECT_NAME: Schema = {"pattern": OBJECT_NAME.pattern, "maxLength": 253}

# Keywords and CEL rules pydantic expresses in validator code, by field path ("" for spec itself, "a.b" for
# properties, "[]" for list items). The regexes are the models' own where the model has one that RE2 reads.
# Each vendor adds the rules of the fields only it reads (its policy extension), in _spend_policy_extras.
_SPEND_POLICY_EXTRAS: dict[str, Schema] = {
    "dailyCapUsd": USD,
    "allow[]": {"pattern": ENDPOINT_PATTERN},
    "params[].field": {"pattern": rules._FIELD.pattern},
    "params[].endpoints[]": {"pattern": ENDPOINT_PATTERN},
    "currencies": {
        "maxItems": MAX_CURRENCIES,
        "x-kubernetes-validations": [
            cel_rule(
                "self.all(c, self.exists_one(d, d.code.lowerAscii() == c.code.lowerAscii()))",
                "a currency is listed twice",
            )
        ],
    },
    "currencies[]": {
        "x-kubernetes-validations": [
            cel_rule(
                "self.code.lowerAscii() == 'usd' || has(self.usdRate)",
                "a currency other than usd needs usdRate (USD per unit) to be counted against the cap",
            )
        ]
    },
    "currencies[].code": {"pattern": CURRENCY_PATTERN, "maxLength": 3},
    "currencies[].usdRate": {"pattern": USD_RATE_PATTERN},
    "timeZone": {"pattern": TIME_ZONE_PATTERN},
    # `per` is a Go duration as CEL reads it ('60s', '1m', '1h'); the model's pattern already keeps it one.
    "loopBreaker": {
        "x-kubernetes-validations": [
            cel_rule(
                "duration(self.per) <= duration('24h')",
                "per is longer than 24h; the daily cap covers longer spans",
                "per",
            )
        ]
    },
    "loopBreaker.endpoints[]": {"pattern": ENDPOINT_PATTERN},
    "approval.aboveUsd": USD,
    "approval": {
        "x-kubernetes-validations": [
            cel_rule(
                "!has(self.ttl) || duration(self.ttl) <= duration('24h')",
                "ttl is longer than 24h, how long the vendor keeps an Idempotency-Key",
                "ttl",
            )
        ]
    },
    "approval.endpoints[]": {"pattern": ENDPOINT_PATTERN},
    "budgetRef.name": _OBJECT_NAME,
}

_SPEND_BUDGET_EXTRAS: dict[str, Schema] = {
    "dailyCapUsd": USD,
    "timeZone": {"pattern": TIME_ZONE_PATTERN},
}


def _spend_policy_extras() -> dict[str, Schema]:
    out = {"": {"x-kubernetes-validations": _vendor_rules()}, **_SPEND_POLICY_EXTRAS, **_vendor_items()}
    for ext in extensions().values():
        out.update(ext.crd)
    return out


_VAULT_KEY_EXTRAS: dict[str, Schema] = {
    "policyRef.name": _OBJECT_NAME,
    "vendorKeySecretRef.name": _OBJECT_NAME,
    "vendorKeySecretRef.key": {"pattern": vault_key._SECRET_KEY.pattern, "maxLength": 253},
    "tokenSecretName": _OBJECT_NAME,
}

# Kubernetes' format names (k8s.io/kube-openapi strfmt); anything else pydantic emits must be mapped first.
_FORMATS = frozenset(
    {"date-time", "date", "int32", "int64", "float", "double", "byte", "uri", "email", "uuid"}
)
_PASSTHROUGH = (
    "description",
    "default",
    "enum",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
)


def structural(model: type[BaseModel], extras: dict[str, Schema]) -> Schema:
    """The model's JSON schema as a Kubernetes structural schema, with `extras` merged in by field path."""
    source = model.model_json_schema(by_alias=True)
    defs = source.get("$defs", {})
    out = _node(source, defs, "")
    for path, keywords in extras.items():
        _at(out, path).update(copy.deepcopy(keywords))
    return out


def _node(node: Schema, defs: dict[str, Schema], path: str) -> Schema:
    if "$ref" in node:
        target = defs[node["$ref"].removeprefix("#/$defs/")]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    if "anyOf" in node:
        return _union(node, defs, path)
    if "const" in node:
        node = {**node, "enum": [node["const"]]}
    out: Schema = {}
    for key in _PASSTHROUGH:
        if key in node and not (key == "default" and node[key] is None):
            out[key] = node[key]
    if "format" in out and out["format"] not in _FORMATS:
        raise ValueError(f"{path or 'spec'}: format {out['format']!r} is not one Kubernetes knows")
    kind = node.get("type")
    if kind is None:
        raise ValueError(f"{path or 'spec'}: no type in {node!r}")
    out["type"] = kind
    if kind == "object":
        props = node.get("properties", {})
        out["properties"] = {
            name: _node(sub, defs, f"{path}.{name}" if path else name) for name, sub in props.items()
        }
        if node.get("required"):
            out["required"] = list(node["required"])
    elif kind == "array":
        out["items"] = _node(node["items"], defs, f"{path}[]")
    return out


def _union(node: Schema, defs: dict[str, Schema], path: str) -> Schema:
    """`X | None` is X (a null is pruned, reading as omitted); `str | int` is int-or-string; else untyped."""
    branches = [b for b in node["anyOf"] if b.get("type") != "null"]
    siblings = {k: v for k, v in node.items() if k != "anyOf" and not (k == "default" and v is None)}
    if len(branches) == 1:
        return _node({**branches[0], **siblings}, defs, path)
    kinds = sorted(str(b.get("type")) for b in branches)
    head = {k: siblings[k] for k in _PASSTHROUGH if k in siblings}
    if kinds == ["integer", "string"] and all(set(b) == {"type"} for b in branches):
        return {**head, "x-kubernetes-int-or-string": True}
    if path in _UNTYPED:
        return {**head, "x-kubernetes-preserve-unknown-fields": True}
    raise ValueError(f"{path}: {kinds} has no structural form; add it to _UNTYPED with a reason")


def _at(schema: Schema, path: str) -> Schema:
    node = schema
    for part in path.split(".") if path else []:
        name, items = part.removesuffix("[]"), part.endswith("[]")
        try:
            node = node["properties"][name]
            if items:
                node = node["items"]
        except KeyError:
            raise KeyError(f"{path}: no such field in the model's schema (renamed?)") from None
    return node


# --- status: written by the operator (tollgate.reconcile.status), so spelled out here ----------------------


def _str(description: str, **more: Any) -> Schema:
    return {"type": "string", "description": description, "nullable": True, **more}


def _decimal(description: str) -> Schema:
    return _str(description, pattern=DECIMAL_PATTERN)


def _time(description: str) -> Schema:
    return _str(description, format="date-time")


def _generation() -> Schema:
    return {
        "type": "integer",
        "format": "int64",
        "minimum": 0,
        "nullable": True,
        "description": "metadata.generation this status was computed from.",
    }


def _conditions() -> Schema:
    return {
        "type": "array",
        "description": "Kubernetes-style conditions; `kubectl wait --for=condition=Ready` works on them.",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["type", "status"],
            "properties": {
                "type": {"type": "string", "description": "Ready, Expired, Revoked, Suspended or Exhausted."},
                "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                "reason": {"type": "string", "description": "CamelCase reason for the condition's status."},
                "message": {"type": "string", "description": "Human-readable detail."},
                "lastTransitionTime": {
                    "type": "string",
                    "format": "date-time",
                    "description": "When the status last changed.",
                },
                "observedGeneration": _generation(),
            },
        },
    }


def vault_key_status() -> Schema:
    return {
        "type": "object",
        "description": "What the gateway does with this key right now, and its spend today.",
        "properties": {
            "state": _str(
                "Ready, or why calls with this key are refused.",
                enum=[
                    "Ready",
                    "Suspended",
                    "Expired",
                    "Revoked",
                    "PolicyMissing",
                    "BudgetMissing",
                    "SecretMissing",
                    "Invalid",
                ],
            ),
            "message": _str("Why the key is in this state, in words."),
            "observedGeneration": _generation(),
            "tokenSecretName": _str("Secret holding the vault token the agent uses (key `token`)."),
            "tokenRotation": _str("spec.tokenRotation the current token was minted for."),
            "grantVersion": _str("Version of the compiled grant ext_authz enforces."),
            "day": _str("The cap's current day, in the policy's time zone.", format="date"),
            "dailyCapUsd": _decimal("The daily cap, USD."),
            "spentTodayUsd": _decimal("Spent (reserved or settled) today, USD."),
            "remainingTodayUsd": _decimal("Left to spend today, USD."),
            "expiresAt": _time(
                "When the key stops working: the earlier of its own and its policy's expiresAt."
            ),
            "lastDecision": {
                "type": "object",
                "nullable": True,
                "description": "The last call decided with this key.",
                "properties": {
                    "rule": {"type": "string", "description": "Rule code, e.g. tollgate_allowed."},
                    "decisionId": {"type": "string", "description": "Correlates with the audit log."},
                    "at": {"type": "string", "format": "date-time", "description": "When it was decided."},
                },
            },
            "conditions": _conditions(),
        },
    }


def spend_policy_status() -> Schema:
    return {
        "type": "object",
        "description": "Whether the policy is enforced, and how many keys are held to it.",
        "properties": {
            "state": _str("Ready, Invalid or Expired.", enum=["Ready", "Invalid", "Expired"]),
            "message": _str("Why the policy is in this state, in words."),
            "observedGeneration": _generation(),
            "boundKeys": {
                "type": "integer",
                "format": "int32",
                "minimum": 0,
                "nullable": True,
                "description": "VaultKeys that name this policy.",
            },
            "conditions": _conditions(),
        },
    }


def spend_approval_status() -> Schema:
    return {
        "type": "object",
        "description": "Where the approval stands, as ext_authz will treat the agent's retry.",
        "properties": {
            "state": _str(
                "Pending, Approved (the retry passes once), Rejected, Used (its call passed) or Expired.",
                enum=["Pending", "Approved", "Rejected", "Used", "Expired"],
            ),
            "message": _str("What happens next, in words."),
            "decidedBy": _str(
                f"Who approved or rejected it ({DECIDED_BY_ANNOTATION}, else the field manager)."
            ),
            "decidedAt": _time("When it was approved or rejected."),
            "expiresAt": _time("When a pending approval, or an approved one not yet used, expires."),
            "usedAt": _time("When the approved call passed."),
        },
    }


def spend_budget_status() -> Schema:
    return {
        "type": "object",
        "description": "The budget's spend today across every key under it.",
        "properties": {
            "state": _str("Ready, Invalid or Exhausted.", enum=["Ready", "Invalid", "Exhausted"]),
            "message": _str("Why the budget is in this state, in words."),
            "observedGeneration": _generation(),
            "day": _str("The budget's current day, in its time zone.", format="date"),
            "dailyCapUsd": _decimal("The budget's daily cap, USD."),
            "spentTodayUsd": _decimal("Spent (reserved or settled) today by every key under it, USD."),
            "remainingTodayUsd": _decimal("Left to spend today, USD."),
            "boundPolicies": {
                "type": "integer",
                "format": "int32",
                "minimum": 0,
                "nullable": True,
                "description": "SpendPolicies that name this budget in budgetRef.",
            },
            "conditions": _conditions(),
        },
    }


# --- the CRD documents ---------------------------------------------------------------------------------------


def _column(name: str, json_path: str, kind: str, description: str, priority: int = 0) -> Schema:
    column: Schema = {"name": name, "type": kind, "jsonPath": json_path, "description": description}
    if priority:
        column["priority"] = priority
    return column


# A "date" column prints the time *since* a value, and "<invalid>" for one in the future: expiry times are
# shown as strings.
_AGE = _column("Age", ".metadata.creationTimestamp", "date", "Time since the object was created.")


def _crd(
    kind: str,
    plural: str,
    short: str,
    description: str,
    model: type[BaseModel],
    extras: dict[str, Schema],
    status: Schema,
    columns: list[Schema],
) -> Schema:
    spec = structural(model, extras)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "tollgate", "app.kubernetes.io/part-of": "tollgate"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": list(CATEGORIES),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def spend_policy_crd() -> Schema:
    return _crd(
        "SpendPolicy",
        "spendpolicies",
        "sp",
        "What agents holding a VaultKey bound to this policy may do with one vendor, and spend per day.",
        SpendPolicySpec,
        _spend_policy_extras(),
        spend_policy_status(),
        [
            _column("Vendor", ".spec.vendor", "string", "The vendor this policy governs."),
            _column("Cap", ".spec.dailyCapUsd", "string", "Daily cap per key, USD."),
            _column("Mode", ".spec.mode", "string", "enforce or shadow."),
            _column("Keys", ".status.boundKeys", "integer", "VaultKeys held to this policy."),
            _column("State", ".status.state", "string", "Ready, Invalid or Expired."),
            _column("Expires", ".spec.expiresAt", "string", "When every key on this policy stops working."),
            _AGE,
            _column("Message", ".status.message", "string", "Why the policy is in this state.", priority=1),
        ],
    )


def vault_key_crd() -> Schema:
    return _crd(
        "VaultKey",
        "vaultkeys",
        "vk",
        "One agent's credential: a vault token held to a SpendPolicy, standing in for the real vendor key.",
        VaultKeySpec,
        _VAULT_KEY_EXTRAS,
        vault_key_status(),
        [
            _column("Policy", ".spec.policyRef.name", "string", "The SpendPolicy this key is held to."),
            _column("Cap", ".status.dailyCapUsd", "string", "Daily cap, USD."),
            _column("Spent", ".status.spentTodayUsd", "string", "Spent today, USD."),
            _column("Remaining", ".status.remainingTodayUsd", "string", "Left to spend today, USD."),
            _column("Expires", ".status.expiresAt", "string", "When the key stops working."),
            _column("State", ".status.state", "string", "Ready, or why calls are refused."),
            _AGE,
            _column("Message", ".status.message", "string", "Why the key is in this state.", priority=1),
        ],
    )


def spend_approval_crd() -> Schema:
    return _crd(
        "SpendApproval",
        "spendapprovals",
        "spa",  # "sa" is the ServiceAccount's
        "A call above a SpendPolicy's spec.approval.aboveUsd, waiting for a person; written by the operator. "
        f"Decide with `kubectl annotate spendapproval <name> {DECISION_ANNOTATION}=approve` (or =reject), "
        f"optionally with {DECIDED_BY_ANNOTATION}=<who>; then the agent's retry with the same "
        "Idempotency-Key and parameters passes once.",
        SpendApprovalSpec,
        {},
        spend_approval_status(),
        [
            _column("Key", ".spec.vaultKey", "string", "The VaultKey the call was made with."),
            _column("Policy", ".spec.policy", "string", "The SpendPolicy asking for approval."),
            _column("Endpoint", ".spec.endpoint", "string", "The vendor operation."),
            _column("Amount", ".spec.amountUsd", "string", "What the call costs, USD."),
            _column("State", ".status.state", "string", "Pending, Approved, Rejected, Used or Expired."),
            _AGE,
            _column("By", ".status.decidedBy", "string", "Who decided.", priority=1),
            _column("Message", ".status.message", "string", "What happens next.", priority=1),
        ],
    )


def spend_budget_crd() -> Schema:
    return _crd(
        "SpendBudget",
        "spendbudgets",
        "sb",
        "A daily cap shared by every VaultKey of every SpendPolicy that names it in budgetRef, across vendors.",
        SpendBudgetSpec,
        _SPEND_BUDGET_EXTRAS,
        spend_budget_status(),
        [
            _column("Cap", ".status.dailyCapUsd", "string", "Daily cap of the budget, USD."),
            _column("Spent", ".status.spentTodayUsd", "string", "Spent today by every key under it, USD."),
            _column("Remaining", ".status.remainingTodayUsd", "string", "Left to spend today, USD."),
            _column("Policies", ".status.boundPolicies", "integer", "SpendPolicies naming this budget."),
            _column("State", ".status.state", "string", "Ready, Invalid or Exhausted."),
            _AGE,
            _column("Message", ".status.message", "string", "Why the budget is in this state.", priority=1),
        ],
    )


BUILDERS: dict[str, Callable[[], Schema]] = {
    f"{GROUP}_spendapprovals.yaml": spend_approval_crd,
    f"{GROUP}_spendbudgets.yaml": spend_budget_crd,
    f"{GROUP}_spendpolicies.yaml": spend_policy_crd,
    f"{GROUP}_vaultkeys.yaml": vault_key_crd,
}

HEADER = (
    "# Generated from the pydantic models in src/tollgate/policy/ by `tollgate dev gen-crds`; do not edit.\n"
    "# Kubernetes prunes unknown fields instead of rejecting them: run `tollgate check` to have a misspelled\n"
    "# field named (the operator also marks such an object Invalid).\n"
)


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line descriptions, so the files read like hand-written CRDs."""


def _str_presenter(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _str_presenter)


def render_yaml(crd: Schema) -> str:
    return HEADER + yaml.dump(crd, Dumper=_Dumper, sort_keys=False, width=110, allow_unicode=True)


def rendered() -> dict[str, str]:
    """File name in crds/ → its exact text."""
    return {name: render_yaml(build()) for name, build in BUILDERS.items()}
