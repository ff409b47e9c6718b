"""What a SpendPolicy and a VaultKey are, and the Grant document ext_authz reads. Pure."""
