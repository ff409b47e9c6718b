"""Tollgate's data plane: the Envoy ext_authz gRPC server."""
