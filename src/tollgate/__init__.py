"""Tollgate: spend caps, scopes and instant revocation in front of money-moving APIs."""

__version__ = "0.1.0"
