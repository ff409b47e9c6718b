"""`tollgate approve|reject <id>` and `tollgate approvals`: a person's decision on a call waiting for one
(spec.approval), written straight into the gateway's Redis. Local mode's way; in a cluster, annotate the
SpendApproval object (the operator calls the same functions)."""

from __future__ import annotations

import asyncio
import getpass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

REDIS_URL_FILE = "redis.url"  # written by `tollgate local` into its work directory

RedisUrl = Annotated[
    str | None,
    typer.Option(
        envvar="TOLLGATE_REDIS__URL",
        help="The gateway's Redis; default: the one `tollgate local` runs for --workdir.",
    ),
]
Workdir = Annotated[
    Path, typer.Option(help="`tollgate local`'s work directory (.tollgate beside the manifests).")
]
By = Annotated[str | None, typer.Option(help="Who decides, for the audit; default: your login name.")]


def _url(redis_url: str | None, workdir: Path) -> str:
    if redis_url:
        return redis_url
    saved = workdir / REDIS_URL_FILE
    if not saved.is_file():
        typer.echo(
            f"error: no running gateway found ({saved} is missing); pass --redis-url or --workdir", err=True
        )
        raise typer.Exit(2)
    return saved.read_text().strip()


def _decide(approval_id: str, approve: bool, redis_url: str, by: str) -> None:
    from tollgate.errors import StoreUnavailable
    from tollgate.reconcile.approvals import ApprovalNotDecided, decide, describe
    from tollgate.store.redis import RedisStore

    async def run() -> str:
        store = RedisStore.from_url(redis_url)
        try:
            now = datetime.now(UTC)
            done = await decide(store, approval_id, approve=approve, by=by, now=now)
            return ("" if done.changed else "already ") + describe(done.record, now)
        finally:
            await store.close()

    try:
        line = asyncio.run(run())
    except ApprovalNotDecided as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except StoreUnavailable as exc:  # nothing was decided: the approval stays pending
        typer.echo(f"error: {exc}; nothing was decided", err=True)
        raise typer.Exit(1) from None
    typer.echo(line)


def _who(by: str | None) -> str:
    return by or f"{getpass.getuser()} (tollgate CLI)"


def approve(
    approval_id: Annotated[str, typer.Argument(help="The id from the refusal, e.g. apr-3f2a….")],
    redis_url: RedisUrl = None,
    workdir: Workdir = Path(".tollgate"),
    by: By = None,
) -> None:
    """Approve a pending call: the agent's retry with the same Idempotency-Key passes, once."""
    _decide(approval_id, True, _url(redis_url, workdir), _who(by))


def reject(
    approval_id: Annotated[str, typer.Argument(help="The id from the refusal, e.g. apr-3f2a….")],
    redis_url: RedisUrl = None,
    workdir: Workdir = Path(".tollgate"),
    by: By = None,
) -> None:
    """Reject a pending call: its retries are refused (tollgate_approval_rejected)."""
    _decide(approval_id, False, _url(redis_url, workdir), _who(by))


def approvals(redis_url: RedisUrl = None, workdir: Workdir = Path(".tollgate")) -> None:
    """List the calls waiting for (or given) a person's approval, newest first."""
    from tollgate.reconcile.approvals import describe
    from tollgate.store.redis import RedisStore

    async def run() -> list[str]:
        store = RedisStore.from_url(_url(redis_url, workdir))
        try:
            now = datetime.now(UTC)
            records = sorted(await store.approvals(), key=lambda r: r.created_ms, reverse=True)
            return [describe(r, now) for r in records]
        finally:
            await store.close()

    for line in asyncio.run(run()) or ["no approvals"]:
        typer.echo(line)
