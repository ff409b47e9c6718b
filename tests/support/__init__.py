"""Test helpers shared across tiers."""
