"""The one place Tollgate's exceptions become kopf's: an invalid spec is permanent (and shown on the
object as an Invalid condition and a Warning Event naming the field); Redis or the API server being
away is temporary. Anything else is left to kopf's own retry with backoff."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, NoReturn

import kopf
from pydantic import ValidationError

from tollgate.errors import InvalidSpec, StoreUnavailable
from tollgate.policy.manifests import field_errors
from tollgate.reconcile.status import Transition, invalid_status
from tollgate_operator.kube_secrets import KubeUnavailable, post_event

RETRY_DELAY_S = 5
Handler = Callable[..., Awaitable[None]]


def kopf_errors(fn: Handler) -> Handler:
    """Wrap a kopf handler (kopf passes every kwarg; `body` and `patch` are used when present).

    The result is typed as taking any keywords, as kopf calls it: kopf's handler protocols cannot
    describe the index kwargs our handlers name."""

    @functools.wraps(fn)
    async def wrapper(**kwargs: Any) -> None:
        try:
            await fn(**kwargs)
        except ValidationError as exc:
            _invalid("; ".join(field_errors(exc, "spec")), kwargs)
        except InvalidSpec as exc:
            _invalid(str(exc), kwargs)
        except (StoreUnavailable, KubeUnavailable) as exc:
            raise kopf.TemporaryError(str(exc), delay=RETRY_DELAY_S) from exc

    return wrapper


def _invalid(message: str, kwargs: dict[str, Any]) -> NoReturn:
    body: kopf.Body | None = kwargs.get("body")
    patch: kopf.Patch | None = kwargs.get("patch")
    if body is not None:
        post_event(body, Transition("Warning", "Invalid", message))
        if patch is not None:
            status = invalid_status(
                message,
                kind=str(body.get("kind")),
                generation=body.metadata.get("generation"),
                previous_conditions=body.status.get("conditions"),
                now=datetime.now(UTC),
            )
            patch.status.update(status)
    raise kopf.PermanentError(message)
