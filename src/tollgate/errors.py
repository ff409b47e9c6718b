"""The exceptions Tollgate raises when it cannot do its job.

Denials are values (`tollgate.decide.verdict.Deny`), never exceptions: an exception here means
"could not decide" or "could not apply", and every caller maps it to a fail-closed outcome.
"""


class TollgateError(Exception):
    """Root of every error Tollgate raises on purpose."""


class InvalidSpec(TollgateError):
    """A SpendPolicy, VaultKey or setting is malformed; `field` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ConfigError(TollgateError):
    """Process settings are unusable (missing encryption key, bad URL...)."""


class StoreUnavailable(TollgateError):
    """Redis could not be reached or answered an error; callers must fail closed."""


class VendorLookupFailed(TollgateError):
    """A read from the vendor needed to price or scope a call failed."""


class SecretNotFound(TollgateError):
    """A referenced Secret (or key inside it) does not exist."""
