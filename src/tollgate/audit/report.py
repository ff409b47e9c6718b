"""One day of the audit, gathered for the daily spend report: the same queries as `tollgate audit`
(`audit/queries.py`), shaped for a page. No HTML here (that is `tollgate.web.report_page`)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel

from tollgate.audit import queries
from tollgate.audit.sql import AuditStore, day_range
from tollgate.decide.rules import Rule

TOP_CALLS = 10
STOPPING_RULES = (Rule.CAP_EXCEEDED.value, Rule.BUDGET_EXCEEDED.value, Rule.LOOP_BREAKER.value)


class PolicySpend(BaseModel):
    policy: str | None
    calls: int
    denied: int
    spent_micro_usd: int


class KeySpend(BaseModel):
    key: str | None
    policy: str | None  # the policy of the key's last call with a cap
    calls: int
    denied: int
    spent_micro_usd: int
    cap_micro_usd: int | None
    unknown_micro_usd: int


class Point(BaseModel):
    at: datetime
    spent_micro_usd: int  # the key's money moved so far today, this call included


class Series(BaseModel):
    policy: str | None
    key: str
    cap_micro_usd: int | None
    points: list[Point]


class Denials(BaseModel):
    rule: str
    denied: int


class Call(BaseModel):
    at: datetime
    key: str | None
    policy: str | None
    method: str | None
    path: str | None
    cost_micro_usd: int
    vendor_status: int | None
    settlement: str | None
    response_flags: str | None = None


class Stopped(BaseModel):
    key: str | None
    policy: str | None
    stopped_by: str
    shadow: bool  # a shadow-mode policy would have refused these
    calls: int
    first_at: datetime
    last_at: datetime


class CapReached(BaseModel):
    key: str
    policy: str | None
    cap_micro_usd: int
    at: datetime  # the call that brought the key's money moved to its cap or past it


class DayReport(BaseModel):
    day: date
    generated_at: datetime
    calls: int
    denied: int
    spent_micro_usd: int
    unknown_micro_usd: int
    by_policy: list[PolicySpend]
    by_key: list[KeySpend]
    series: list[Series]
    denials: list[Denials]
    top_calls: list[Call]
    stopped: list[Stopped]
    reached_cap: list[CapReached]
    unknown: list[Call]


def build(store: AuditStore, day: date, *, top: int = TOP_CALLS) -> DayReport:
    where, params = day_range(day, day)  # what `tollgate audit … --since D --until D` asks

    def rows(sql: str, extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        columns, values = store.query(sql, {**params, **(extra or {})})
        return [dict(zip(columns, v, strict=True)) for v in values]

    by_policy = [
        PolicySpend(**_ints(r, "calls", "denied", "spent_micro_usd"))
        for r in rows(queries.spend("policy", where))
    ]
    sql, names = queries.unknown_settlements(where)
    unknown = [_call(r) for r in rows(sql, names)]
    by_key = _keys(rows(queries.spend("key", where)), rows(queries.key_policies(where)), unknown)
    series = _series(rows(queries.moved_calls(where)), {k.key: k for k in by_key})
    sql, names = queries.stopped_keys(STOPPING_RULES, where)
    return DayReport(
        day=day,
        generated_at=datetime.now(UTC),
        calls=sum(p.calls for p in by_policy),
        denied=sum(p.denied for p in by_policy),
        spent_micro_usd=sum(p.spent_micro_usd for p in by_policy),
        unknown_micro_usd=sum(c.cost_micro_usd for c in unknown),
        by_policy=by_policy,
        by_key=by_key,
        series=series,
        denials=[
            Denials(rule=r["rule"], denied=int(r["denied"])) for r in rows(queries.denials("rule", where))
        ],
        top_calls=[_call(r) for r in rows(queries.top_calls(where), {"limit": top})],
        stopped=[
            Stopped(
                key=r["vault_key_id"],
                policy=r["policy_id"],
                stopped_by=r["stopped_by"],
                shadow=bool(r["shadow"]),
                calls=int(r["calls"]),
                first_at=_at(r["first_at"]),
                last_at=_at(r["last_at"]),
            )
            for r in rows(sql, names)
        ],
        reached_cap=_reached_cap(series),
        unknown=unknown,
    )


def _reached_cap(series: list[Series]) -> list[CapReached]:
    out = []
    for s in series:
        cap = s.cap_micro_usd
        at = next((p.at for p in s.points if cap and p.spent_micro_usd >= cap), None)
        if cap and at is not None:
            out.append(CapReached(key=s.key, policy=s.policy, cap_micro_usd=cap, at=at))
    return sorted(out, key=lambda c: (c.at, c.key))


def _keys(spend: list[dict[str, Any]], seen: list[dict[str, Any]], unknown: list[Call]) -> list[KeySpend]:
    policy: dict[str | None, str] = {}
    cap: dict[str | None, int] = {}
    for r in seen:  # in time order: the last value known wins
        if r["policy_id"] is not None:
            policy[r["vault_key_id"]] = r["policy_id"]
        if r["cap_micro_usd"] is not None:
            cap[r["vault_key_id"]] = int(r["cap_micro_usd"])
    open_money: dict[str | None, int] = defaultdict(int)
    for c in unknown:
        open_money[c.key] += c.cost_micro_usd
    out = []
    for r in spend:
        out.append(
            KeySpend(
                key=r["key"],
                policy=policy.get(r["key"]),
                calls=int(r["calls"]),
                denied=int(r["denied"]),
                spent_micro_usd=int(r["spent_micro_usd"] or 0),
                cap_micro_usd=cap.get(r["key"]),
                unknown_micro_usd=open_money[r["key"]],
            )
        )
    return out


def _series(moved: list[dict[str, Any]], keys: dict[str | None, KeySpend]) -> list[Series]:
    """Running total per (policy, key) over the day; keys with no money moved have no line."""
    lines: dict[tuple[str | None, str], list[Point]] = {}
    totals: dict[str, int] = defaultdict(int)
    for r in moved:
        key = r["vault_key_id"]
        if key is None:
            continue
        totals[key] += int(r["cost_micro_usd"])
        lines.setdefault((r["policy_id"], key), []).append(
            Point(at=_at(r["at"]), spent_micro_usd=totals[key])
        )
    return [
        Series(
            policy=policy, key=key, cap_micro_usd=keys[key].cap_micro_usd if key in keys else None, points=pts
        )
        for (policy, key), pts in sorted(lines.items(), key=lambda kv: (kv[0][0] or "", kv[0][1]))
    ]


def _call(r: dict[str, Any]) -> Call:
    return Call(
        at=_at(r["at"]),
        key=r["vault_key_id"],
        policy=r["policy_id"],
        method=r["method"],
        path=r["path"],
        cost_micro_usd=int(r["cost_micro_usd"] or 0),
        vendor_status=_int(r["vendor_status"]),
        settlement=r["settlement"],
        response_flags=r.get("response_flags"),
    )


def _ints(r: dict[str, Any], *names: str) -> dict[str, Any]:
    return {**r, **{n: int(r[n] or 0) for n in names}}


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def _at(v: Any) -> datetime:
    """Raw SQL hands back datetimes on PostgreSQL and ISO text on SQLite; both are UTC."""
    at = v if isinstance(v, datetime) else datetime.fromisoformat(str(v))
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
