"""`tollgate audit …`: run the ingest pipeline, and answer the questions people ask of the audit."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from tollgate.audit import queries
from tollgate.audit.sql import AuditStore, AuditStoreUnavailable, day_range
from tollgate.money import usd_digits
from tollgate.settings import Settings

app = typer.Typer(no_args_is_help=True, help="The audit trail: one SQL row per call.")

DbOption = Annotated[str | None, typer.Option("--db", help="Audit store URL (default: TOLLGATE_AUDIT__URL).")]
Since = Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD.")]
Until = Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD.")]


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


FormatOption = Annotated[Format, typer.Option("--format", help="table, csv or json.")]


# Local mode keeps its work files, the audit database among them, in this folder beside its manifests.
LOCAL_AUDIT_DB = Path(".tollgate") / "audit.db"
_NOT_SEARCHED = {".git", ".venv", "node_modules", "__pycache__"}


def audit_url(db: str | None) -> str:
    """Where the audit commands read: --db, else TOLLGATE_AUDIT__URL, else the database of a local
    gateway run from this folder, else the default SQLite file."""
    if db:
        return db
    audit = Settings().audit
    if "url" not in audit.model_fields_set and (local := local_audit_url()) is not None:
        typer.echo(f"reading the local gateway's audit: {local.removeprefix('sqlite:///')}", err=True)
        return local
    return audit.url


def local_audit_url(start: Path | None = None, depth: int = 4) -> str | None:
    """The newest `.tollgate/audit.db` in `start` (the working directory) or a folder below it, as a URL."""
    root = start or Path.cwd()
    found: list[Path] = []
    level = [root]
    for _ in range(depth + 1):
        found += [d / LOCAL_AUDIT_DB for d in level if (d / LOCAL_AUDIT_DB).is_file()]
        level = [
            c
            for d in level
            for c in _subfolders(d)
            if c.name not in _NOT_SEARCHED and not c.name.startswith(".")
        ]
    if not found:
        return None
    return f"sqlite:///{max(found, key=lambda p: p.stat().st_mtime)}"


def _subfolders(d: Path) -> list[Path]:
    try:
        return [c for c in d.iterdir() if c.is_dir() and not c.is_symlink()]
    except OSError:
        return []


def _store(db: str | None) -> AuditStore:
    store = AuditStore.from_url(audit_url(db))
    try:
        store.migrate()
    except AuditStoreUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    return store


def _days(since: str | None, until: str | None) -> tuple[str, dict[str, Any]]:
    try:
        return day_range(
            date.fromisoformat(since) if since else None, date.fromisoformat(until) if until else None
        )
    except ValueError as exc:
        raise typer.BadParameter(f"dates are YYYY-MM-DD: {exc}") from None


def _envoy_reopen(admin_url: str) -> Callable[[], Awaitable[None]]:
    import httpx

    async def reopen() -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            (await client.post(f"{admin_url.rstrip('/')}/reopen_logs")).raise_for_status()

    return reopen


def _envoy_inflight(admin_url: str) -> Callable[[], Awaitable[int]]:
    """Requests Envoy's listener has in flight (its `downstream_rq_active` gauge)."""
    import httpx

    async def inflight() -> int:
        params = {"filter": r"^http\.tollgate\.downstream_rq_active$", "format": "json"}
        async with httpx.AsyncClient(timeout=2) as client:
            r = await client.get(f"{admin_url.rstrip('/')}/stats", params=params)
            r.raise_for_status()
        return sum(int(s.get("value") or 0) for s in r.json().get("stats", []) if "name" in s)

    return inflight


@app.command()
def ingest(
    log: Annotated[
        Path | None, typer.Option(help="Envoy's JSON access log (default: TOLLGATE_AUDIT__LOG_PATH).")
    ] = None,
    db: DbOption = None,
    redis_url: Annotated[
        str | None, typer.Option(help="Redis to settle reservations in (default: TOLLGATE_REDIS__URL).")
    ] = None,
    once: Annotated[bool, typer.Option(help="Ingest what is there and exit.")] = False,
    metrics_port: Annotated[int, typer.Option(help="Serve Prometheus /metrics here; 0 turns it off.")] = 0,
    metrics_host: Annotated[
        str, typer.Option(help="The address /metrics listens on (local mode: 127.0.0.1).")
    ] = "0.0.0.0",
    rotate_bytes: Annotated[
        int, typer.Option(help="Rotate the log past this size once ingested (needs --envoy-admin); 0: never.")
    ] = 0,
    envoy_admin: Annotated[
        str | None,
        typer.Option(
            help="Envoy's admin URL: asked to reopen the log after a rotation, and what is in "
            "flight before spend is rebuilt after Redis lost data."
        ),
    ] = None,
    flush_ms: Annotated[
        int, typer.Option(help="How long Envoy may buffer a log line (its flush interval).")
    ] = 1000,
    nice: Annotated[
        int,
        typer.Option(
            min=0,
            max=19,
            help="Lower this process's CPU priority by this much: on cores it shares with Envoy and "
            "ext_authz, the audit (batch work; its log is durable) yields to the calls waiting. 0 keeps it.",
        ),
    ] = 10,
) -> None:
    """Tail the access log into the audit store and settle spend; runs until interrupted."""
    from tollgate.audit.alerts import AlertRules, AlertSender
    from tollgate.audit.ingest import AuditPipeline
    from tollgate.audit.metrics import AuditMetrics
    from tollgate.audit.record import AuditRow
    from tollgate.logging_setup import configure
    from tollgate.store.redis import RedisStore

    settings = Settings()
    configure(settings.log_level, settings.log_format)
    if nice:
        # Raising one's own niceness needs no privilege (a container's securityContext allows it).
        os.nice(nice)
    # Not migrated here: the pipeline migrates, retrying a database that is down (at start too) forever.
    # A locked SQLite file fails a write within a second: rows are retried later, settlement goes on.
    store = AuditStore.from_url(db or settings.audit.url, sqlite_lock_wait_s=1.0)
    redis = RedisStore.from_url(redis_url or settings.redis.url, timeout_s=settings.redis.timeout_ms / 1000)

    async def main() -> None:
        metrics = AuditMetrics()
        if metrics_port:
            metrics.serve(metrics_port, metrics_host)
        observers: list[Callable[[list[AuditRow]], None]] = [metrics.observe]
        sender = None
        if settings.alerts.slack_webhook_url is not None:
            rules = AlertRules(settings.alerts)
            sender = AlertSender(settings.alerts, redis)
            sender.start()
            observers.append(lambda rows: sender.submit(rules.evaluate(rows)))
        pipeline = AuditPipeline(
            log or Path(settings.audit.log_path),
            store,
            redis,
            observers=observers,
            rotate_bytes=rotate_bytes if envoy_admin else 0,
            reopen=_envoy_reopen(envoy_admin) if envoy_admin else None,
            ledger=redis,
            inflight=_envoy_inflight(envoy_admin) if envoy_admin else None,
            flush_s=flush_ms / 1000,
            approvals=redis,
            approval_observers=[metrics.observe_approvals],
        )
        try:
            if once:
                while await pipeline.run_once():
                    pass
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await pipeline.run(stop)
        finally:
            if sender is not None:
                await asyncio.wait_for(sender.stop(), timeout=30)
            await redis.close()

    asyncio.run(main())


@app.command()
def spend(
    db: DbOption = None,
    by: Annotated[str, typer.Option(help="key, policy, vendor or day.")] = "key",
    since: Since = None,
    until: Until = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Money moved (allowed calls the vendor accepted), grouped by key, policy, vendor or day."""
    if by not in queries.SPEND_GROUPS:
        raise typer.BadParameter(f"--by must be one of {', '.join(queries.SPEND_GROUPS)}")
    where, params = _days(since, until)
    _print(*_store(db).query(queries.spend(by, where), params), fmt)


@app.command()
def denials(
    db: DbOption = None,
    by: Annotated[str, typer.Option(help="rule or key.")] = "rule",
    since: Since = None,
    until: Until = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Denied calls by rule (or by key)."""
    if by not in queries.DENIAL_GROUPS:
        raise typer.BadParameter("--by must be rule or key")
    where, params = _days(since, until)
    _print(*_store(db).query(queries.denials(by, where), params), fmt)


@app.command()
def timeline(
    key: Annotated[str, typer.Argument(help="Vault key id, namespace/name.")],
    db: DbOption = None,
    limit: Annotated[int, typer.Option(help="Most recent calls to show.")] = 50,
    fmt: FormatOption = Format.table,
) -> None:
    """One key's calls, newest first, with the decision next to each."""
    sql = (
        "SELECT at, method, path, decision, rule, cost_micro_usd, vendor_status, settlement, agent_run_id "
        "FROM tollgate_calls WHERE vault_key_id = :key ORDER BY at DESC LIMIT :limit"
    )
    _print(*_store(db).query(sql, {"key": key, "limit": limit}), fmt)


@app.command()
def report(
    day: Annotated[str | None, typer.Option(help="The UTC day, YYYY-MM-DD (default: yesterday).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write here (default: tollgate-report-DAY.html).")] = None,
    db: DbOption = None,
    top: Annotated[int, typer.Option(help="How many of the costliest calls to list.")] = 10,
) -> None:
    """One day as a self-contained HTML page: spend against caps (a chart), denials, top calls, stops."""
    from tollgate.audit.report import build
    from tollgate.web.report_page import render

    try:
        when = date.fromisoformat(day) if day else datetime.now(UTC).date() - timedelta(days=1)
    except ValueError as exc:
        raise typer.BadParameter(f"--day is YYYY-MM-DD: {exc}") from None
    path = out or Path(f"tollgate-report-{when.isoformat()}.html")
    path.write_text(render(build(_store(db), when, top=top)), encoding="utf-8")
    typer.echo(f"wrote {path}")


@app.command()
def reconcile(
    day: Annotated[str | None, typer.Option(help="The UTC day, YYYY-MM-DD (default: yesterday).")] = None,
    db: DbOption = None,
    fmt: FormatOption = Format.table,
    stripe_read_key_env: Annotated[
        str | None,
        typer.Option(
            help="Name of an environment variable holding a read-only Stripe key (rk_…): also list the "
            "day's Stripe objects that no row explains."
        ),
    ] = None,
    stripe_api: Annotated[str, typer.Option(help="Stripe's API base URL.")] = "https://api.stripe.com",
    stripe_unfiltered: Annotated[
        bool,
        typer.Option(
            help="Read whole collections and keep the day's objects here, for a Stripe-compatible fake "
            "that has no `created` filter (localstripe)."
        ),
    ] = False,
) -> None:
    """What an auditor asks of a day: rows where the vendor moved another amount than was reserved,
    rows whose outcome is unknown, and (with a read-only key) the vendor's objects no row explains.
    Exits 1 when there is anything to look at."""
    import os

    from tollgate.audit import reconcile as rec

    try:
        when = date.fromisoformat(day) if day else datetime.now(UTC).date() - timedelta(days=1)
    except ValueError as exc:
        raise typer.BadParameter(f"--day is YYYY-MM-DD: {exc}") from None
    store = _store(db)
    found = rec.findings(store, when)
    if stripe_read_key_env:
        key = os.environ.get(stripe_read_key_env, "")
        if not key:
            raise typer.BadParameter(f"environment variable {stripe_read_key_env} is empty or unset")
        import httpx

        try:
            found += rec.unexplained(
                store, rec.stripe_objects(stripe_api, key, when, by_created=not stripe_unfiltered), "stripe"
            )
        except httpx.HTTPError as exc:
            typer.echo(f"error: listing Stripe's objects for {when}: {exc}", err=True)
            raise typer.Exit(2) from None
    _print(*rec.as_rows(found), fmt)
    if found:
        raise typer.Exit(1)


@app.command("sql")
def run_sql(
    statement: Annotated[str, typer.Argument(help="A SELECT over tollgate_calls.")],
    db: DbOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """One SELECT (or WITH … SELECT), printed as a table, CSV or JSON; the database is opened read-only."""
    from tollgate.audit.readonly import NotAQuery, QueryFailed, read_only_query

    try:
        result = read_only_query(audit_url(db), statement)
    except NotAQuery as exc:
        typer.echo(f"error: {exc}; tollgate audit sql only reads (SELECT … FROM tollgate_calls)", err=True)
        raise typer.Exit(2) from None
    except QueryFailed as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    _print(*result, fmt)


def _print(columns: list[str], rows: list[tuple[Any, ...]], fmt: Format) -> None:
    shown = [_usd_columns(columns)]
    body = [[_cell(c, v) for c, v in zip(columns, r, strict=True)] for r in rows]
    if fmt is Format.json:
        typer.echo(json.dumps([dict(zip(shown[0], r, strict=True)) for r in body], indent=2, default=str))
    elif fmt is Format.csv:
        w = csv.writer(sys.stdout)
        w.writerow(shown[0])
        w.writerows(body)
    else:
        table = shown + [[("" if v is None else str(v)) for v in r] for r in body]
        widths = [max(len(str(row[i])) for row in table) for i in range(len(columns))]
        for n, row in enumerate(table):
            typer.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
            if n == 0:
                typer.echo("  ".join("-" * w for w in widths))


def _usd_columns(columns: list[str]) -> list[str]:
    return [c.replace("_micro_usd", "_usd") for c in columns]


def _cell(column: str, value: Any) -> Any:
    if column.endswith("_micro_usd") and value is not None:
        return usd_digits(int(value))
    return value
