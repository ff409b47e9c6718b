"""Tollgate control plane: the kopf operator that reconciles SpendPolicy and VaultKey into Redis."""
