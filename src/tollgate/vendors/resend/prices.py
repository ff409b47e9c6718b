"""Resend's default price, as data: Resend bills per email delivered to each recipient, ≈ $0.90 per
1,000 on its paid plans. A policy's `pricePerEmailUsd` replaces it. Pure."""

from __future__ import annotations

EMAIL = "email"
DEFAULT_EMAIL_USD = "0.0009"
