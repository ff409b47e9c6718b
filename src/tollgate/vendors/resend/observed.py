"""What a Resend answer says it did: the email's (or the batch's first email's) id. Resend reports no
price. Pure."""

from __future__ import annotations

from collections.abc import Mapping

from tollgate.vendors.observed import Observed, text

# What Envoy keeps of an answer for `observed` below.
CAPTURED = frozenset({"id"})


def observed(fields: Mapping[str, object]) -> Observed:
    email_id = text(fields, "id")
    return Observed(object_id=email_id, object_type="email" if email_id else None)
