"""Resend call → Facts: how many emails it sends and to whom. Pure.

Resend bills each email delivered to each recipient, so a send counts one unit per address in `to`, `cc`
and `bcc` (over every email of a batch; an address listed twice is delivered, and counted, twice). Every
one of those addresses is a recipient for the policy's scope. An address Tollgate cannot read exactly is
refused rather than guessed at: a comma inside one string could be a second recipient.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from tollgate.policy.rules import ParamValue
from tollgate.vendors.base import Endpoint, Facts, Invalid, Unpriced, Usage
from tollgate.vendors.resend.prices import EMAIL

_FIELDS = ("to", "cc", "bcc")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"^[^\s@<>,;:\"()\[\]\\]+@({_LABEL}(?:\.{_LABEL})+)$")
_NAMED = re.compile(r"^[^<>]*<([^<>]+)>$")  # "Ops Team <ops@example.com>"


def facts(endpoint: Endpoint, params: Mapping[str, ParamValue]) -> Facts | Invalid | Unpriced:
    if endpoint.pricing == "free":
        return Facts(cost=None)
    if endpoint.pricing == "unpriced":
        return Unpriced(
            f"{endpoint.method} {endpoint.template} may send email Tollgate cannot count, so it is refused"
        )
    assert endpoint.pricing == "email", endpoint.pricing
    if not params.get("to"):
        return Invalid("an email needs at least one 'to' address", "to")
    addresses: list[str] = []
    for name in _FIELDS:
        value = params.get(name, [])
        for raw in [value] if isinstance(value, str) else value:
            address = normalise(raw)
            if address is None:
                return Invalid(f"{name} address {raw!r} is not one email address Tollgate can read", name)
            addresses.append(address)
    hint = "Set spec.pricePerEmailUsd."
    return Facts(cost=None, recipients=frozenset(addresses), usage=(Usage(EMAIL, len(addresses), "", hint),))


def normalise(raw: str) -> str | None:
    """'Ops <Ops@Example.COM>' → 'Ops@example.com'; None for anything but exactly one plain address."""
    text = raw.strip()
    if m := _NAMED.fullmatch(text):
        text = m.group(1).strip()
    m = _ADDRESS.fullmatch(text)
    if not m:
        return None
    local = text[: m.start(1) - 1]
    return f"{local}@{m.group(1).lower()}"
