"""The fingerprint of a request sent under an idempotency key. Pure.

A vendor replays its first result only to a retry with the same parameters and answers a reused key
with other parameters with an error (Stripe: `idempotency_error`). Tollgate keeps the fingerprint of the
first call beside its reservation, so a true retry is not counted again and a reuse with other
parameters is refused up front, as the vendor would refuse it (and a changed amount can never ride on
an earlier, smaller reservation).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from tollgate.decide.call import Call


def fingerprint(call: Call, accounts: Iterable[str]) -> str:
    """Method, path, every parameter and the accounts acted on; independent of parameter order."""
    doc = [call.method, call.path, sorted(accounts), sorted((k, repr(v)) for k, v in call.params.items())]
    return hashlib.sha256(json.dumps(doc, separators=(",", ":")).encode()).hexdigest()[:32]


def approval_id(key_id: str, idempotency_key: str) -> str:
    """The approval a call above spec.approval.aboveUsd waits for: one per (vault key, idempotency key), so
    the agent's retries before a person decides find the same one. A Kubernetes object name as it is."""
    digest = hashlib.sha256(f"{key_id}\0{idempotency_key}".encode()).hexdigest()
    return f"apr-{digest[:20]}"
