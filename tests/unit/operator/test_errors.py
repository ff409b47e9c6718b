"""tollgate_operator.errors: how each failure of a handler reaches kopf (retry or give up) and the user
(an Invalid condition and a Warning Event naming the field). Handlers are called as plain functions."""

from __future__ import annotations

from typing import Any, cast

import kopf
import pytest
from tests.builders import vault_key

import tollgate_operator.errors as errors
from tollgate.errors import InvalidSpec, StoreUnavailable
from tollgate.reconcile.status import Transition
from tollgate_operator.errors import RETRY_DELAY_S, kopf_errors
from tollgate_operator.kube_secrets import KubeUnavailable


def body(kind: str = "VaultKey") -> kopf.Body:
    raw = {
        "apiVersion": "tollgate.dev/v1alpha1",
        "kind": kind,
        "metadata": {"namespace": "agents", "name": "bot", "uid": "uid-1", "generation": 4},
        "status": {"state": "Ready"},
    }
    return kopf.Body(cast(kopf.RawBody, raw))


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[Transition]:
    """Events the wrapper posts (kopf posts them from its own loop, which is not running here)."""
    posted: list[Transition] = []
    monkeypatch.setattr(errors, "post_event", lambda _obj, event: posted.append(event))
    return posted


def failing(exc: BaseException) -> Any:
    @kopf_errors
    async def handler(**_: Any) -> None:
        raise exc

    return handler


def invalid_key_spec() -> None:
    vault_key(vendorKeySecretRef={"name": "stripe", "key": "bad key!"})


async def test_a_spec_that_does_not_validate_is_permanent_and_names_the_field(
    events: list[Transition],
) -> None:
    @kopf_errors
    async def handler(**_: Any) -> None:
        invalid_key_spec()

    patch = kopf.Patch()
    with pytest.raises(kopf.PermanentError, match=r"^spec\.vendorKeySecretRef\.key: "):
        await handler(body=body(), patch=patch)
    status = dict(patch["status"])
    assert status["state"] == "Invalid" and status["message"].startswith("spec.vendorKeySecretRef.key: ")
    assert status["observedGeneration"] == 4
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "Invalid")
    assert [(e.type, e.reason) for e in events] == [("Warning", "Invalid")]
    assert "spec.vendorKeySecretRef.key" in events[0].message


async def test_an_invalid_spec_raised_by_reconcile_is_permanent_too(events: list[Transition]) -> None:
    patch = kopf.Patch()
    error = InvalidSpec("spec.tokenSecretName", "Secret agents/x is not owned by VaultKey bot")
    with pytest.raises(kopf.PermanentError, match=r"^spec\.tokenSecretName: "):
        await failing(error)(body=body(), patch=patch)
    assert patch["status"]["state"] == "Invalid"
    assert events[0].message == str(error)


async def test_a_policy_gets_the_policys_conditions(events: list[Transition]) -> None:
    patch = kopf.Patch()
    with pytest.raises(kopf.PermanentError):
        await failing(InvalidSpec("spec.dailyCapUsd", "must be ≥ 0"))(body=body("SpendPolicy"), patch=patch)
    assert {c["type"] for c in patch["status"]["conditions"]} == {"Ready", "Expired"}


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(StoreUnavailable("redis: ConnectionError"), id="Redis away → retried"),
        pytest.param(KubeUnavailable("Kubernetes API: 503"), id="API server away → retried"),
    ],
)
async def test_an_unreachable_dependency_is_retried_after_a_delay_and_changes_no_status(
    exc: Exception, events: list[Transition]
) -> None:
    patch = kopf.Patch()
    with pytest.raises(kopf.TemporaryError) as raised:
        await failing(exc)(body=body(), patch=patch)
    assert raised.value.delay == RETRY_DELAY_S
    assert not patch and events == []


async def test_anything_else_is_left_to_kopfs_own_backoff(events: list[Transition]) -> None:
    with pytest.raises(RuntimeError, match="bug"):
        await failing(RuntimeError("bug"))(body=body(), patch=kopf.Patch())
    assert events == []


async def test_a_handler_that_succeeds_passes_through_untouched(events: list[Transition]) -> None:
    @kopf_errors
    async def handler(**_: Any) -> None:
        return None

    patch = kopf.Patch()
    await handler(body=body(), patch=patch)
    assert not patch and events == []
