"""Resend parameters the audit never holds: what an email says (its HTML, text, React source and the
content of its attachments)."""

REDACTED = frozenset({"html", "text", "react", "content"})
