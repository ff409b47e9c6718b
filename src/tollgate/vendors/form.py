"""Strict application/x-www-form-urlencoded: what every reader decodes the same way, or a refusal. Pure.

Servers disagree at the edges of form encoding: some split on `;` as well as `&`, some keep a field
without `=`, some decode a malformed escape as text, some let the last of two equal names win and some
the first. None of that is guessed here. Raw bytes must be those form encoding leaves unescaped, every
field is `name=value`, every escape is `%XX` and decodes to UTF-8, and each vendor's grammar for names
is checked on the decoded name (so `%61mount` is judged as `amount`, as the vendor will read it).
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from tollgate.policy.rules import ParamValue
from tollgate.vendors.wire import Ambiguous

__all__ = ["Ambiguous", "nested", "pairs", "repeated"]

# Letters, digits, the unreserved and sub-delimiter characters that are not separators anywhere, '%'
# escapes, '+' for a space, '=' and '&'; raw brackets too, as curl users write `metadata[k]=v`.
_RAW = re.compile(rb"^[A-Za-z0-9\-._~%+=&\[\]!$'()*,/:@?]*$")
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_FIRST_BAD = re.compile(rb"[^A-Za-z0-9\-._~%+=&\[\]!$'()*,/:@?]")
# Stripe-style nested names: a root, then `[segment]`s; `[]` (a list) only at the end.
_NESTED = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def pairs(data: bytes, where: str) -> list[tuple[str, str]]:
    """Decoded (name, value) pairs in order; Ambiguous for anything not strictly form-encoded."""
    if not data:
        return []
    if not _RAW.fullmatch(data):
        bad = _FIRST_BAD.search(data)
        shown = bad.group(0) if bad else b"?"
        raise Ambiguous(
            f"the {where} is not plain form encoding: {shown!r} must be percent-encoded (and ';' is not a separator)"
        )
    if _BAD_ESCAPE.search(data):
        raise Ambiguous(f"the {where} has a '%' that is not followed by two hex digits")
    out: list[tuple[str, str]] = []
    for field in data.split(b"&"):
        name, eq, value = field.partition(b"=")
        if not eq or not name:
            raise Ambiguous(f"the {where} has a field that is not name=value: {field[:40]!r}")
        out.append((_decode(name, where), _decode(value, where)))
    return out


def _decode(raw: bytes, where: str) -> str:
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise Ambiguous(f"the {where} has an escape that is not UTF-8") from exc


def nested(fields: list[tuple[str, str]], root: re.Pattern[str], where: str) -> dict[str, ParamValue]:
    """Stripe-style names as one flat map (`metadata[order]` → value, `expand[]` → list), refusing every
    name set a nested-parameter parser could build two ways: a name twice, `amount` beside `amount[x]`,
    `expand[]` beside `expand[0]`, or `[]` followed by more brackets (whose grouping parsers disagree on).
    `root` is the vendor's grammar for the part before the first bracket."""
    params: dict[str, ParamValue] = {}
    kinds: dict[tuple[str, ...], str] = {}  # path → 'value' | 'list' | 'map'
    for name, value in fields:
        if "[" not in name and "]" not in name:  # a plain name (most are): all of it is the root
            if not name or not root.fullmatch(name):
                raise Ambiguous(f"parameter name {name!r} in the {where} is not one this API reads")
            segments: tuple[str, ...] = (name,)
        else:
            m = _NESTED.fullmatch(name)
            if not m or not root.fullmatch(m.group(1)):
                raise Ambiguous(f"parameter name {name!r} in the {where} is not one this API reads")
            segments = (m.group(1), *_SEGMENT.findall(m.group(2)))
        if "" in segments[1:-1]:
            raise Ambiguous(f"parameter {name!r}: '[]' may only end a name (use indexes: items[0][price])")
        is_list = len(segments) > 1 and segments[-1] == ""
        leaf = segments[:-1] if is_list else segments
        for depth in range(1, len(leaf)):
            _claim(kinds, leaf[:depth], "map", name)
        if not is_list and kinds.get(leaf) == "value":
            raise Ambiguous(f"parameter {_shown(leaf)!r} is given more than once")
        _claim(kinds, leaf, "list" if is_list else "value", name)
        if is_list:
            existing = params.setdefault(name, [])
            assert isinstance(existing, list)
            existing.append(value)
        else:
            params[name] = value
    return params


def _claim(kinds: dict[tuple[str, ...], str], path: tuple[str, ...], kind: str, name: str) -> None:
    had = kinds.setdefault(path, kind)
    if had != kind:
        raise Ambiguous(f"parameter {_shown(path)!r} is given both as a {had} and as a {kind} (in {name!r})")


def _shown(path: tuple[str, ...]) -> str:
    return path[0] + "".join(f"[{s}]" for s in path[1:])


def repeated(
    fields: list[tuple[str, str]], name_grammar: re.Pattern[str], where: str
) -> dict[str, ParamValue]:
    """Flat names where a repeat makes a list (Twilio's `MediaUrl=a&MediaUrl=b`)."""
    params: dict[str, ParamValue] = {}
    for name, value in fields:
        if not name_grammar.fullmatch(name):
            raise Ambiguous(f"parameter name {name!r} in the {where} is not one this API reads")
        existing = params.get(name)
        if existing is None:
            params[name] = value
        else:
            params[name] = [*([existing] if isinstance(existing, str) else existing), value]
    return params
