"""Manifests → Store. Shared by the operator and local mode; knows nothing of kopf or Kubernetes."""
