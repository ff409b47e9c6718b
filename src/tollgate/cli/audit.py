"""`tollgate audit …`: run the ingest pipeline, and answer the questions people ask of the audit."""

from __future__ import annotations

import asyncio
import csv
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from tollgate.audit.sql import AuditStore, AuditStoreUnavailable, day_range
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

# Money moved: allowed calls the vendor answered with a 2xx.
SPENT = (
    "SUM(CASE WHEN decision = 'allow' AND vendor_status BETWEEN 200 AND 299 THEN cost_micro_usd ELSE 0 END)"
)
GROUPS = {"key": "vault_key_id", "policy": "policy_id", "vendor": "vendor", "day": "day"}


def _store(db: str | None) -> AuditStore:
    store = AuditStore.from_url(db or Settings().audit.url)
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
) -> None:
    """Tail the access log into the audit store and settle spend; runs until interrupted."""
    from tollgate.audit.alerts import AlertRules, AlertSender
    from tollgate.audit.ingest import AuditPipeline
    from tollgate.audit.metrics import AuditMetrics
    from tollgate.audit.record import AuditRow
    from tollgate.logging_setup import configure
    from tollgate.store.redis import RedisStore

    settings = Settings()
    configure(settings.log_level)
    # Not migrated here: the pipeline migrates, retrying a database that is down (at start too) forever.
    store = AuditStore.from_url(db or settings.audit.url)
    redis = RedisStore.from_url(redis_url or settings.redis.url, timeout_s=settings.redis.timeout_ms / 1000)

    async def main() -> None:
        metrics = AuditMetrics()
        if metrics_port:
            metrics.serve(metrics_port)
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
    if by not in GROUPS:
        raise typer.BadParameter(f"--by must be one of {', '.join(GROUPS)}")
    where, params = _days(since, until)
    col = GROUPS[by]
    sql = (
        f"SELECT {col} AS {by}, COUNT(*) AS calls, "
        f"SUM(CASE WHEN decision = 'deny' THEN 1 ELSE 0 END) AS denied, {SPENT} AS spent_micro_usd "
        f"FROM tollgate_calls WHERE {where} GROUP BY {col} ORDER BY spent_micro_usd DESC, {col}"
    )
    _print(*_store(db).query(sql, params), fmt)


@app.command()
def denials(
    db: DbOption = None,
    by: Annotated[str, typer.Option(help="rule or key.")] = "rule",
    since: Since = None,
    until: Until = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Denied calls by rule (or by key)."""
    col = {"rule": "rule", "key": "vault_key_id"}.get(by)
    if col is None:
        raise typer.BadParameter("--by must be rule or key")
    where, params = _days(since, until)
    sql = (
        f"SELECT {col} AS {by}, COUNT(*) AS denied FROM tollgate_calls "
        f"WHERE decision = 'deny' AND {where} GROUP BY {col} ORDER BY denied DESC, {col}"
    )
    _print(*_store(db).query(sql, params), fmt)


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


@app.command("sql")
def run_sql(
    statement: Annotated[str, typer.Argument(help="A SELECT over tollgate_calls.")],
    db: DbOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Any query, printed as a table, CSV or JSON."""
    _print(*_store(db).query(statement), fmt)


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
        return str((Decimal(int(value)) / 1_000_000).quantize(Decimal("0.000001")).normalize())
    return value
