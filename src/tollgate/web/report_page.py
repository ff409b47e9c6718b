"""`tollgate audit report`: one day of the audit as one self-contained HTML page (inline SVG, no script)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from html import escape
from importlib import resources

from tollgate.audit.report import Call, DayReport, KeySpend
from tollgate.web.money import usd
from tollgate.web.svg import spend_over_day

NONE = "(none)"


def _e(v: object) -> str:
    return escape("" if v is None else str(v), quote=True)


def _time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%H:%M:%S")


def _money(micro: int) -> str:
    return f'<td class="num" data-micro-usd="{micro}">{_e(usd(micro))}</td>'


def _table(table_id: str, head: Iterable[str], rows: list[str], empty: str) -> str:
    if not rows:
        return f'<p class="note" id="{table_id}-empty">{_e(empty)}</p>'
    ths = "".join(f'<th class="{"num" if h.startswith("#") else ""}">{_e(h.lstrip("#"))}</th>' for h in head)
    return f'<table id="{table_id}"><thead><tr>{ths}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _key_row(k: KeySpend) -> str:
    share = k.spent_micro_usd / k.cap_micro_usd if k.cap_micro_usd else 0.0
    bar = (
        f'<div class="bar{" over" if share >= 1 else ""}" style="width:{min(share, 1) * 100:.1f}%"></div>'
        if k.cap_micro_usd
        else ""
    )
    cap = _money(k.cap_micro_usd) if k.cap_micro_usd is not None else '<td class="num">–</td>'
    return (
        f'<tr data-key="{_e(k.key or "")}"><td>{_e(k.key or NONE)}</td>{_money(k.spent_micro_usd)}{cap}'
        f'<td class="num share">{share * 100:.0f}%</td><td style="width:120px">{bar}</td>'
        f"{_money(k.unknown_micro_usd)}"
        f'<td class="num calls">{k.calls}</td><td class="num denied">{k.denied}</td></tr>'
    )


def _call_row(c: Call, flags: bool = False) -> str:
    return (
        f"<tr><td>{_time(c.at)}</td><td>{_e(c.key or NONE)}</td><td>{_e(c.policy or NONE)}</td>"
        f"<td><code>{_e(c.method)} {_e(c.path)}</code></td>{_money(c.cost_micro_usd)}"
        f'<td class="num">{_e(c.vendor_status)}</td><td>{_e(c.settlement or "")}</td>'
        + (f"<td><code>{_e(c.response_flags or '')}</code></td>" if flags else "")
        + "</tr>"
    )


def _spend_section(r: DayReport) -> str:
    day_start = datetime.combine(r.day, time(0), tzinfo=UTC)
    until = min(day_start + timedelta(days=1), max(r.generated_at, day_start))
    policies = [p.policy for p in r.by_policy]
    out = ['<section id="spend"><h2>Spend against the cap</h2>']
    out.append(
        _table(
            "spend-by-policy",
            ["Policy", "#Calls", "#Denied", "#Money moved"],
            [
                f'<tr data-policy="{_e(p.policy or "")}"><td>{_e(p.policy or NONE)}</td>'
                f'<td class="num calls">{p.calls}</td><td class="num denied">{p.denied}</td>{_money(p.spent_micro_usd)}</tr>'
                for p in r.by_policy
            ],
            "No calls on this day.",
        )
    )
    for policy in policies:
        keys = [k for k in r.by_key if k.policy == policy]
        series = [s for s in r.series if s.policy == policy]
        out.append(f'<div class="policy" data-policy="{_e(policy or "")}"><h3>{_e(policy or NONE)}</h3>')
        if series:
            out.append(spend_over_day(series, day_start, until))
        out.append(
            _table(
                f"keys-{_slug(policy)}",
                ["Key", "#Money moved", "#Cap", "#Of cap", "", "#Unknown outcome", "#Calls", "#Denied"],
                [_key_row(k) for k in keys],
                "No key of this policy called today.",
            ).replace("<table ", '<table class="keys" ', 1)
        )
        out.append("</div>")
    out.append("</section>")
    return "".join(out)


def _slug(v: str | None) -> str:
    return "".join(c if c.isalnum() else "-" for c in (v or "none"))


def render(r: DayReport) -> str:
    cards = [
        ("Money moved", usd(r.spent_micro_usd), "spent", r.spent_micro_usd),
        ("Unknown outcome, still counted", usd(r.unknown_micro_usd), "unknown", r.unknown_micro_usd),
        ("Calls", str(r.calls), "calls", r.calls),
        ("Denied", str(r.denied), "denied", r.denied),
    ]
    summary = "".join(
        f'<div class="card" id="total-{cid}" data-value="{v}"><div class="note">{_e(label)}</div>'
        f'<div class="big">{_e(text)}</div></div>'
        for label, text, cid, v in cards
    )
    denials = _table(
        "denials",
        ["Rule", "#Denied"],
        [
            f'<tr data-rule="{_e(d.rule)}"><td><code>{_e(d.rule)}</code></td><td class="num">{d.denied}</td></tr>'
            for d in r.denials
        ],
        "No call was denied.",
    )
    stopped = _table(
        "stopped",
        ["Key", "Policy", "Stopped by", "#Calls refused", "First", "Last"],
        [
            f'<tr data-key="{_e(s.key or "")}" data-rule="{_e(s.stopped_by)}"><td>{_e(s.key or NONE)}</td>'
            f"<td>{_e(s.policy or NONE)}</td><td><code>{_e(s.stopped_by)}</code>{' (shadow: would have)' if s.shadow else ''}</td>"
            f'<td class="num">{s.calls}</td><td>{_time(s.first_at)}</td><td>{_time(s.last_at)}</td></tr>'
            for s in r.stopped
        ],
        "No key hit its cap or the loop breaker.",
    )
    reached = _table(
        "reached-cap",
        ["Key", "Policy", "#Cap", "Reached at"],
        [
            f'<tr data-key="{_e(c.key)}"><td>{_e(c.key)}</td><td>{_e(c.policy or NONE)}</td>'
            f"{_money(c.cap_micro_usd)}<td>{_time(c.at)}</td></tr>"
            for c in r.reached_cap
        ],
        "No key's money moved reached its cap.",
    )
    top = _table(
        "top-calls",
        ["Time", "Key", "Policy", "Call", "#Cost", "#Vendor status", "Settlement"],
        [_call_row(c) for c in r.top_calls],
        "No allowed call had a cost.",
    )
    unknown = _table(
        "unknown",
        ["Time", "Key", "Policy", "Call", "#Cost", "#Vendor status", "Settlement", "Envoy flags"],
        [_call_row(c, flags=True) for c in r.unknown],
        "Every reservation was settled or released by evidence.",
    )
    body = (
        f'<header><h1>Spend on {r.day.isoformat()} <span class="note">(UTC)</span></h1>'
        f'<p class="lede">From the Tollgate audit, generated {r.generated_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC. '
        "Money moved counts allowed calls the vendor accepted (as <code>tollgate audit spend</code> does); "
        "calls whose outcome nothing proved stay counted against the cap and are listed apart.</p>"
        f'<div class="cards">{summary}</div></header><main class="report">'
        f"{_spend_section(r)}"
        f"<section><h2>Keys that hit the cap or the loop breaker</h2>{stopped}"
        f"<h3>Money moved that reached the cap</h3>{reached}</section>"
        f"<section><h2>Denials by rule</h2>{denials}</section>"
        f"<section><h2>Top calls by cost</h2>{top}</section>"
        f"<section><h2>Unknown settlements</h2>{unknown}</section></main>"
    )
    css = resources.files("tollgate.web").joinpath("assets", "page.css").read_text(encoding="utf-8")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>Tollgate · spend on {r.day.isoformat()}</title><style>{css}</style></head>"
        f"<body>{body}</body></html>\n"
    )
