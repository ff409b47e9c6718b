"""Admission as the API server would do it, without one: a CRD's openAPIV3Schema (via jsonschema, with
date-time checked) plus its CEL `x-kubernetes-validations` (via cel-python) and map-list keys.

What this does not do, and the tests say so where it matters: pruning of unknown fields (the API server drops
them silently; the models reject them) and CEL cost estimation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import celpy
import jsonschema
from celpy import celtypes

from tollgate.policy import crd

Schema = dict[str, Any]


def _lower_ascii(s: celtypes.StringType) -> celtypes.StringType:
    # Kubernetes' CEL strings extension; cel-python has only the standard library.
    return celtypes.StringType(str(s).lower())


_CEL = celpy.Environment()
_FUNCTIONS = {"lowerAscii": _lower_ascii}
_FORMATS = jsonschema.FormatChecker(["date-time", "date"])


def root_schema(kind: str) -> Schema:
    build = {
        "SpendPolicy": crd.spend_policy_crd,
        "VaultKey": crd.vault_key_crd,
        "SpendBudget": crd.spend_budget_crd,
    }[kind]
    root: Schema = build()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return root


def spec_schema(kind: str) -> Schema:
    spec: Schema = root_schema(kind)["properties"]["spec"]
    return spec


def status_errors(kind: str, status: Any) -> list[str]:
    """`field.path: message` for each thing in a `.status` the API server would refuse."""
    validator = jsonschema.Draft7Validator(
        _nullable(root_schema(kind)["properties"]["status"]), format_checker=_FORMATS
    )
    return [f"{_path(['status', *e.absolute_path])}: {e.message}" for e in validator.iter_errors(status)]


def _nullable(node: Any) -> Any:
    # OpenAPI's `nullable: true` is JSON Schema's `null` among the types (and the enum).
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        out["type"] = [node["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def admission_errors(kind: str, spec: Any) -> list[str]:
    """`field.path: message` for each thing the API server would refuse in `spec` (empty: admitted)."""
    schema = spec_schema(kind)
    validator = jsonschema.Draft7Validator(schema, format_checker=_FORMATS)
    errors = [
        f"{_path(['spec', *e.absolute_path, *_missing(e)])}: {e.message}" for e in validator.iter_errors(spec)
    ]
    if errors:  # like the API server, CEL runs only on a value of the right shape
        return errors
    return list(_cel_errors(schema, spec, ["spec"]))


def _missing(e: jsonschema.ValidationError) -> list[str]:
    # The API server names the missing field itself ("spec.vendor: Required value"); jsonschema its parent.
    if e.validator == "required" and isinstance(e.instance, dict):
        return [name for name in e.validator_value if name not in e.instance][:1]
    return []


def _cel_errors(schema: Schema, value: Any, path: list[str | int]) -> Iterator[str]:
    for rule in schema.get("x-kubernetes-validations", []):
        program = _CEL.program(_CEL.compile(rule["rule"]), functions=_FUNCTIONS)
        result = program.evaluate({"self": celpy.json_to_cel(value)})
        if not (isinstance(result, celtypes.BoolType) and bool(result)):
            where = _path(path) + rule.get("fieldPath", "")
            yield f"{where}: {rule['message']}"
    keys = schema.get("x-kubernetes-list-map-keys")
    if keys and isinstance(value, list):
        seen: set[tuple[Any, ...]] = set()
        for item in value:
            key = tuple(item.get(k) for k in keys)
            if key in seen:
                yield f"{_path(path)}: Duplicate value: {dict(zip(keys, key, strict=True))}"
            seen.add(key)
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                yield from _cel_errors(sub, value[name], [*path, name])
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            yield from _cel_errors(schema["items"], item, [*path, i])


def _path(parts: list[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out
