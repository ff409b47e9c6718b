"""What the vendor says it did, from the few fields Envoy read out of its answer
(tollgate.envoy.capture): the object it created or changed, and the money it moved. Pure.

Each vendor package maps its own field names (`vendors/<vendor>/observed.py`); values arrive as the
strings Envoy logged and are read strictly: an amount that is not a plain integer is no amount."""

from __future__ import annotations

import re
from collections.abc import Mapping

from tollgate.record import record

_INT = re.compile(r"^-?[0-9]{1,18}$")


@record
class Observed:
    object_id: str | None = None
    object_type: str | None = None
    amount_minor: int | None = None  # in the minor units of `currency`; None: the vendor did not say
    currency: str | None = None  # lower case
    state: str | None = None  # the vendor's own status word (`succeeded`, `pending`, `queued`)


def integer(v: str | None) -> int | None:
    return int(v) if v is not None and _INT.fullmatch(v) else None


def text(fields: Mapping[str, object], name: str) -> str | None:
    v = fields.get(name)
    return v if isinstance(v, str) and v else None
