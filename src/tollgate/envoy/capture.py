"""The Lua filter that reads what the vendor did from its answer (capture.lua), filled in for one Envoy.

Envoy's own Lua filter, in line with the response, writes a handful of top-level fields of the vendor's
JSON body into dynamic metadata; the access log carries them to the audit (no extra hop). Which fields
mean what is each vendor's knowledge (`vendors/<vendor>/observed.py`); the list here is only what Envoy
keeps, all of them scalars that name an object or money, never a secret."""

from __future__ import annotations

from importlib import resources

# Dynamic-metadata namespace the captured fields land in (written by the access log as `vendor_response`).
NAMESPACE = "tollgate.vendor"
# Top-level members kept: Stripe (id, object, amount, amount_captured or captured and
# amount_refunded of a charge, amount_received of a
# payment intent, amount_paid of an invoice, currency, status), Twilio (sid, status, price, price_unit), Resend (id).
FIELDS = (
    "id", "object", "amount", "amount_captured", "amount_received", "amount_paid", "amount_refunded",
    "captured", "currency", "status",
    "sid", "price", "price_unit",
)  # fmt: skip
# Bytes of a body read at most; a charge or refund object puts these members in its first few hundred.
LIMIT_BYTES = 16_384


def source(limit_bytes: int = LIMIT_BYTES) -> str:
    lua = resources.files("tollgate.envoy").joinpath("capture.lua").read_text()
    fields = ", ".join(f"{f} = true" for f in FIELDS)
    return (
        lua.replace("__NAMESPACE__", NAMESPACE)
        .replace("__LIMIT__", str(limit_bytes))
        .replace("__FIELDS__", fields)
    )
