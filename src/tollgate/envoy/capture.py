"""The Lua filter that reads what the vendor did from its answer (capture.lua), filled in for one Envoy.

Envoy's own Lua filter, in line with the response, writes a handful of top-level fields of the vendor's
JSON body into dynamic metadata; the access log carries them to the audit (no extra hop). Which fields
mean what is each vendor's knowledge (`vendors/<vendor>/observed.py`), and so is which fields Envoy keeps
(each vendor's `captured`): all of them scalars that name an object or money, never a secret."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources

# Dynamic-metadata namespace the captured fields land in (written by the access log as `vendor_response`).
NAMESPACE = "tollgate.vendor"
# Bytes of a body read at most; a charge or refund object puts these members in its first few hundred.
LIMIT_BYTES = 16_384


def source(fields: Iterable[str], limit_bytes: int = LIMIT_BYTES) -> str:
    """The filter, keeping the top-level members named in `fields` (each vendor's `captured`, gathered by
    the caller: EnvoyParams.captured_fields). Sorted, so the same vendors render the same config."""
    lua = resources.files("tollgate.envoy").joinpath("capture.lua").read_text()
    # Quoted keys: a member named like a Lua keyword (`end`) stays a key. Names are checked by EnvoyParams.
    fields = ", ".join(f'["{f}"] = true' for f in sorted(fields))
    return (
        lua.replace("__NAMESPACE__", NAMESPACE)
        .replace("__LIMIT__", str(limit_bytes))
        .replace("__FIELDS__", fields)
    )
