"""How many SMS segments a message body is billed as. Pure.

A body that fits the GSM-7 alphabet travels in 7-bit septets: 160 in a single SMS, 153 per segment once
split (the concatenation header takes the rest). Any other character turns the whole body into UCS-2:
70 UTF-16 code units, 67 per segment when split. Characters of the GSM-7 extension table take two septets
(an escape and the character), and a character outside the Basic Multilingual Plane (most emoji) takes two
UTF-16 units (a surrogate pair). Neither pair may straddle two segments, so a segment can end one short.

Twilio's Smart Encoding can swap some Unicode look-alikes (curly quotes) for GSM-7 ones; counting without it
can only overstate the cost, which a cap tolerates and an undercount would not.
"""

from __future__ import annotations

from tollgate.record import record

# 3GPP TS 23.038 default alphabet, without 0x1B (the escape to the extension table, never a character).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each is sent as ESC + character, two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7 = "GSM-7"
UCS2 = "UCS-2"
_LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}  # (alone, per segment when split)


@record
class Segments:
    encoding: str  # GSM-7 or UCS-2
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    count: int  # segments billed; 0 for an empty body


def count(body: str) -> Segments:
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in body):
        encoding, sizes = GSM7, [2 if c in GSM7_EXTENSION else 1 for c in body]
    else:
        encoding, sizes = UCS2, [2 if ord(c) > 0xFFFF else 1 for c in body]
    units = sum(sizes)
    alone, per_segment = _LIMITS[encoding]
    if units <= alone:
        return Segments(encoding, units, 1 if units else 0)
    segments, filled = 1, 0
    for size in sizes:
        if filled + size > per_segment:  # a two-unit character never straddles segments
            segments, filled = segments + 1, 0
        filled += size
    return Segments(encoding, units, segments)
