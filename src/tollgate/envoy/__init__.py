"""Envoy configuration as data: parameters in, a bootstrap document out."""
