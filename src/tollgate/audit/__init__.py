"""The audit pipeline: Envoy's access log → one SQL row per call, spend settled against the reservation."""
