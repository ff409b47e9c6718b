"""Vault tokens (minted, hashed) and the sealed box that keeps real vendor keys encrypted at rest.

The agent only ever holds a vault token; Redis holds its SHA-256 and the vendor key sealed with Fernet,
whose key material lives outside Redis (a Kubernetes Secret, or an ephemeral key in local mode).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from tollgate.errors import ConfigError

TOKEN_PREFIX = "tgk_"


def mint_token() -> str:
    """A new vault token: 256 random bits, prefixed so leaked tokens are recognisable by scanners."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_digest(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def fingerprint(vendor_key: str) -> str:
    """A short, non-reversible name for a vendor key, safe for logs and cache keys."""
    return hashlib.sha256(vendor_key.encode()).hexdigest()[:16]


def new_box_key() -> str:
    return Fernet.generate_key().decode()


class CredentialBox:
    """Seal and open vendor keys. The first key seals; every key opens, so keys can be rotated."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ConfigError("no credential encryption key configured (TOLLGATE_CREDENTIALS__KEYS)")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                "credential encryption keys must be Fernet keys (32 url-safe base64 bytes)"
            ) from exc

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise ConfigError("a stored vendor key cannot be decrypted with the configured keys") from exc
