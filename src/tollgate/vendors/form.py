"""Strict application/x-www-form-urlencoded parsing with Stripe's nested keys. Pure.

The gateway must read a request exactly as the vendor will. Anything the vendor could read two ways
(a key twice, `amount` beside `amount[]`, the same key in body and query) is refused as ambiguous.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from tollgate.policy.rules import ParamValue


class Ambiguous(ValueError):
    """The parameters can be read more than one way."""


def parse_pairs(text: str, where: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict")
    except (ValueError, UnicodeDecodeError) as exc:
        raise Ambiguous(f"the {where} is not valid form encoding: {exc}") from exc


def merge(*sources: tuple[str, list[tuple[str, str]]]) -> dict[str, ParamValue]:
    """Merge named sources of pairs into one map; `k[]` keys collect lists, anything else must be unique."""
    params: dict[str, ParamValue] = {}
    origin: dict[str, str] = {}
    for where, pairs in sources:
        for key, value in pairs:
            if key in origin and origin[key] != where:
                raise Ambiguous(f"parameter {key!r} is given in both the {origin[key]} and the {where}")
            origin[key] = where
            if key.endswith("[]"):
                existing = params.setdefault(key, [])
                assert isinstance(existing, list)
                existing.append(value)
            elif key in params:
                raise Ambiguous(f"parameter {key!r} is given more than once")
            else:
                params[key] = value
    _refuse_scalar_beside_nested(params)
    return params


def _refuse_scalar_beside_nested(params: dict[str, ParamValue]) -> None:
    # `amount=5` and `amount[x]=9` (or `amount[]=9`) both name `amount`: the vendor picks one, we cannot know which.
    scalars = {k for k in params if "[" not in k}
    for key in params:
        root = key.split("[", 1)[0]
        if "[" in key and root in scalars:
            raise Ambiguous(f"parameter {root!r} is given both as a value and as {key!r}")


def parse_form(body: bytes, query: str) -> dict[str, ParamValue]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Ambiguous("the body is not UTF-8") from exc
    return merge(("body", parse_pairs(text, "body")), ("query string", parse_pairs(query, "query string")))
