"""SecretReader: where reconcile gets real vendor keys. The Kubernetes reader lives in the operator."""

from __future__ import annotations

import os
import re
from typing import Protocol

from tollgate.errors import SecretNotFound
from tollgate.policy.manifests import SecretObject

_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class SecretReader(Protocol):
    async def read(self, namespace: str, name: str, key: str) -> str: ...


class ManifestSecretReader:
    """Secrets from local manifests. A value written `${NAME}` is read from the environment, so a real
    vendor key never has to sit in a file."""

    def __init__(self, secrets: dict[str, SecretObject]) -> None:
        self._secrets = secrets

    async def read(self, namespace: str, name: str, key: str) -> str:
        secret = self._secrets.get(f"{namespace}/{name}")
        if secret is None:
            raise SecretNotFound(f"Secret {namespace}/{name} not found")
        if key not in secret.data:
            raise SecretNotFound(f"Secret {namespace}/{name} has no key {key!r}")
        value = secret.data[key]
        if m := _ENV_REF.match(value.strip()):
            env = os.environ.get(m[1])
            if not env:
                raise SecretNotFound(
                    f"Secret {namespace}/{name} key {key!r} refers to ${{{m[1]}}}, which is not set"
                )
            return env
        return value
