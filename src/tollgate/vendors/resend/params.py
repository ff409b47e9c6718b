"""A Resend JSON body (and query string) → one flat parameter map, read exactly or refused. Pure.

Nested objects flatten to bracketed names (`headers[X-Entity-Ref-ID]`, `tags[0][name]`), lists of plain
values stay lists (`to: ["a@x.com", "b@y.com"]`), numbers and booleans become their JSON text and null
is absent. A batch (a JSON list of emails) collects each name's values across every email into one list,
so `to` holds every `to` address of the batch and a rule such as `from in [...]` must hold for each email.

A key given twice in one object is refused: JSON parsers disagree on which one wins.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tollgate.policy.rules import ParamValue
from tollgate.vendors import form


def parse(content_type: str, body: bytes, query: str) -> dict[str, ParamValue]:
    mime = content_type.split(";", 1)[0].strip().lower()
    params: dict[str, ParamValue] = {}
    if body:
        if mime != "application/json":
            raise form.Ambiguous(f"Resend takes JSON bodies, not {mime or 'an untyped body'!r}")
        try:
            doc = json.loads(body, object_pairs_hook=_unique_keys)
        except (ValueError, UnicodeDecodeError) as exc:
            raise form.Ambiguous(f"the body is not valid JSON: {exc}") from exc
        if isinstance(doc, dict):
            params = _flat(doc)
        elif isinstance(doc, list) and all(isinstance(e, dict) for e in doc):
            for email in doc:
                for key, value in _flat(email).items():
                    collected = params.setdefault(key, [])
                    assert isinstance(collected, list)
                    collected.extend([value] if isinstance(value, str) else value)
        else:
            raise form.Ambiguous("the body must be a JSON object, or a list of objects for a batch")
    for key, value in form.merge(("query string", form.parse_pairs(query, "query string"))).items():
        if key in params:
            raise form.Ambiguous(f"parameter {key!r} is given in both the body and the query string")
        params[key] = value
    return params


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    for k in keys:
        if keys.count(k) > 1:
            raise form.Ambiguous(f"key {k!r} is given more than once in one JSON object")
    return dict(pairs)


def _flat(obj: dict[str, Any]) -> dict[str, ParamValue]:
    out: dict[str, ParamValue] = {}
    for key, value in _walk(obj, ""):
        if key in out:  # {"a[b]": 1, "a": {"b": 2}} names a[b] twice
            raise form.Ambiguous(f"parameter {key!r} is given more than once")
        out[key] = value
    return out


def _walk(value: Any, name: str) -> Iterator[tuple[str, ParamValue]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{name}[{k}]" if name else k)
    elif isinstance(value, list) and not any(isinstance(v, dict | list) for v in value):
        yield name, [t for v in value if (t := _text(v)) is not None]
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{name}[{i}]")
    elif (text := _text(value)) is not None:
        yield name, text


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)
