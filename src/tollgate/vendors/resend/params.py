"""A Resend request → one flat parameter map, read exactly or refused. Pure.

Writes carry a JSON body (UTF-8, `application/json`); reads carry a query string. Nested objects flatten
to bracketed names (`headers[X-Entity-Ref-ID]`, `tags[0][name]`), lists of plain values stay lists
(`to: ["a@x.com", "b@y.com"]`), numbers and booleans become their JSON text and null is absent. A batch
(a JSON list of emails) collects each name's values across every email into one list, so `to` holds every
`to` address of the batch and a rule such as `from in [...]` must hold for each email.

Refused, because JSON readers or mail pipelines disagree on them: a key given twice in one object,
NaN/Infinity, lone surrogates, top-level names that are not Resend's lower-case ones (`"To"`, `"CC"`), and
custom `headers` that name recipients or the sender (`Bcc`, `To`, `From`, …), which would reach people the
policy never saw.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from tollgate.policy.rules import ParamValue
from tollgate.vendors import form, wire

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# Header names that address a message: set as custom headers they could add recipients or a sender.
_ADDRESS_HEADERS = frozenset(
    {
        "to",
        "cc",
        "bcc",
        "from",
        "sender",
        "resent-to",
        "resent-cc",
        "resent-bcc",
        "resent-from",
        "resent-sender",
    }
)


def parse(w: wire.Wire) -> dict[str, ParamValue]:
    where, data = wire.params_source(w)
    if where == "query string":
        return form.nested(form.pairs(data, where), _NAME, where)
    if not data:
        return {}
    wire.check_body_encoding(w, "application/json", "Resend")
    text = wire.decode_utf8(data, "body")
    try:
        doc = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
        if _SURROGATE_ESCAPE.search(text):  # only a \ud8xx-\udfxx escape can make a lone surrogate
            _no_lone_surrogates(doc)
    except ValueError as exc:
        if isinstance(exc, wire.Ambiguous):
            raise
        raise wire.Ambiguous(f"the body is not valid JSON: {exc}") from exc
    if isinstance(doc, dict):
        return _email(doc)
    if isinstance(doc, list) and doc and all(isinstance(e, dict) for e in doc):
        params: dict[str, ParamValue] = {}
        for email in doc:
            for key, value in _email(email).items():
                collected = params.setdefault(key, [])
                assert isinstance(collected, list)
                collected.extend([value] if isinstance(value, str) else value)
        return params
    raise wire.Ambiguous("the body must be a JSON object, or a non-empty list of objects for a batch")


def _email(obj: dict[str, Any]) -> dict[str, ParamValue]:
    for key in obj:
        if not _NAME.fullmatch(key):
            raise wire.Ambiguous(
                f"{key!r} is not a Resend field name (they are lower-case, like 'to' and 'cc')"
            )
    headers = obj.get("headers")
    if isinstance(headers, dict):
        for name in headers:
            if name.strip().casefold() in _ADDRESS_HEADERS:
                raise wire.Ambiguous(
                    f"custom header {name!r} would address the email outside to/cc/bcc/from; use those fields"
                )
    elif headers is not None:
        raise wire.Ambiguous("'headers' must be an object of header names to values")
    return _flat(obj)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):  # the rare case: find the name to report
        names = [k for k, _ in pairs]
        dup = next(k for k in names if names.count(k) > 1)
        raise wire.Ambiguous(f"key {dup!r} is given more than once in one JSON object")
    return obj


def _no_constant(name: str) -> Any:
    raise wire.Ambiguous(f"{name} is not JSON")


def _no_lone_surrogates(value: Any) -> None:
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        for s in (k, v):
            if isinstance(s, str):
                try:
                    s.encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise wire.Ambiguous(
                        "the body holds a lone UTF-16 surrogate (\\ud8xx) that readers decode differently"
                    ) from exc
        _no_lone_surrogates(v)


def _flat(obj: dict[str, Any]) -> dict[str, ParamValue]:
    out: dict[str, ParamValue] = {}
    for key, value in _walk(obj, ""):
        if key in out:  # {"a[b]": 1, "a": {"b": 2}} names a[b] twice
            raise wire.Ambiguous(f"parameter {key!r} is given more than once")
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
