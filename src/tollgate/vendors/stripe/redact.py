"""Stripe parameters the audit never holds: card and bank details (also as a token's or a payment
method's raw data), identity numbers and client secrets."""

REDACTED = frozenset(
    {
        "number",
        "cvc",
        "cvc_update",
        "account_number",
        "routing_number",
        "iban",
        "id_number",
        "personal_id_number",
        "ssn_last_4",
        "pii",
        "client_secret",
    }
)
