"""A call's parameters as the audit keeps them: redacted, then bounded. Pure.

Each vendor package lists the parameter names whose values never reach the audit (card numbers, bank
details, message bodies); settings may add more. A name matches a flat parameter by its root or by any
bracketed segment (`card[number]`, `payment_method_data[card][cvc]`, `attachments[0][content]`), so a
nested copy of a secret is caught wherever the vendor accepts it. Any value holding a credential the call
carried is masked too, whatever its name."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from json.encoder import encode_basestring_ascii

from tollgate.policy.rules import ParamValue

MASK = "[redacted]"
# One access-log line carries the parameters: keep it small. A call's own amount, currency and customer
# are in their columns; past this the remaining names are counted, not shown.
MAX_JSON_CHARS = 4_096
MAX_VALUE_CHARS = 256
_SEGMENT = re.compile(r"[^\[\]]+")
# json.dumps with these options builds an encoder per call; one, shared, is a third cheaper (and stateless).
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def segments(name: str) -> set[str]:
    return set(_SEGMENT.findall(name))


# Both run on every call's parameters: names come from a small vocabulary, and lists from settings.
@functools.lru_cache(maxsize=4096)
def _lowered_segments(name: str) -> frozenset[str]:
    return frozenset(s.lower() for s in segments(name))


@functools.lru_cache(maxsize=64)
def _lowered(names: frozenset[str]) -> frozenset[str]:
    return frozenset(n.lower() for n in names)


def redact(
    params: Mapping[str, ParamValue], names: Iterable[str], secrets: Iterable[str] = ()
) -> dict[str, ParamValue]:
    hidden = _lowered(names) if isinstance(names, frozenset) else {n.lower() for n in names}
    creds = [s for s in secrets if s]
    out: dict[str, ParamValue] = {}
    for key, value in params.items():
        if not hidden.isdisjoint(_lowered_segments(key)) or _holds(value, creds):
            out[key] = MASK
        else:
            out[key] = value
    return out


def _holds(value: ParamValue, creds: list[str]) -> bool:
    """Whether the value, or an item of it, holds one of the credentials."""
    if isinstance(value, str):
        for c in creds:  # noqa: SIM110 (any() over a generator costs twice this loop, on every call)
            if c in value:
                return True
        return False
    return any(_holds(v, creds) for v in value)


def audit_json(params: Mapping[str, ParamValue], names: Iterable[str], secrets: Iterable[str] = ()) -> str:
    """The redacted parameters as a JSON object of at most about MAX_JSON_CHARS characters: long values
    are cut (marked '…'), and names that no longer fit are counted under `_more`."""
    kept: dict[str, ParamValue | int] = {}
    size = 2
    items = sorted(redact(params, names, secrets).items())
    for i, (key, value) in enumerate(items):
        short = [_cut(v) for v in value] if isinstance(value, list) else _cut(value)
        piece = _json_len(key, short)
        if size + piece > MAX_JSON_CHARS:
            kept["_more"] = len(items) - i
            break
        kept[key] = short
        size += piece
    return _COMPACT.encode(kept)


def _json_len(key: str, value: str | list[str]) -> int:
    """len(json.dumps({key: value})), without building it: `{"k": "v"}`, `{"k": ["a", "b"]}`."""
    if isinstance(value, str):
        shown = len(encode_basestring_ascii(value))
    else:
        shown = 2 + sum(len(encode_basestring_ascii(v)) for v in value) + 2 * max(0, len(value) - 1)
    return len(encode_basestring_ascii(key)) + shown + 4


def _cut(v: str) -> str:
    return v if len(v) <= MAX_VALUE_CHARS else v[: MAX_VALUE_CHARS - 1] + "…"
