"""Local mode: run the gateway's processes (redis-server, Envoy, ext_authz, a vendor fake) on this machine."""
