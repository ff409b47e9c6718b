"""Twilio parameters the audit never holds: what a message or call says (its body and inline TwiML)."""

REDACTED = frozenset({"Body", "Twiml"})
