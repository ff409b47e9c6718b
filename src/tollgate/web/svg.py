"""Inline SVG charts drawn in Python: no library to ship or load, and the page works offline."""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape

from tollgate.audit.report import Series
from tollgate.web.money import usd

WIDTH, HEIGHT = 760, 230
LEFT, RIGHT, TOP, BOTTOM = 70, 190, 12, 28
PALETTE = ("#635bff", "#0a8f6a", "#d97706", "#0e7490", "#9333ea", "#be185d", "#4d7c0f", "#475569")
DAY = 86_400


def _a(v: object) -> str:
    return escape(str(v), quote=True)


def spend_over_day(series: list[Series], day_start: datetime, until: datetime) -> str:
    """Each key's running spend as a step line from 00:00 to `until`, with a dashed line per cap."""
    caps = sorted({s.cap_micro_usd for s in series if s.cap_micro_usd})
    top = max([*caps, *(s.points[-1].spent_micro_usd for s in series if s.points), 1_000_000])
    step = _nice_step(top * 1.05 / 4)
    y_max = step * 4
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(at: datetime) -> float:
        return round(LEFT + plot_w * min(max((at - day_start).total_seconds(), 0), DAY) / DAY, 2)

    def y(micro: int) -> float:
        return round(TOP + plot_h * (1 - micro / y_max), 2)

    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="Spend over the day against the cap">'
    ]
    for i in range(5):  # y grid: quarters of a round scale
        v = step * i
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(v)}" y2="{y(v)}" stroke="#e3e8ee"/>')
        out.append(
            f'<text x="{LEFT - 6}" y="{y(v) + 4}" text-anchor="end" font-size="11" fill="#5c6378">{_a(usd(v, cents=True))}</text>'
        )
    for h in range(0, 25, 6):
        at = day_start + timedelta(hours=h)
        out.append(f'<line x1="{x(at)}" x2="{x(at)}" y1="{TOP}" y2="{TOP + plot_h}" stroke="#e3e8ee"/>')
        out.append(
            f'<text x="{x(at)}" y="{HEIGHT - 8}" text-anchor="middle" font-size="11" fill="#5c6378">{h:02d}:00</text>'
        )
    for cap in caps:
        out.append(
            f'<line class="cap" data-cap-micro-usd="{cap}" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(cap)}" '
            f'y2="{y(cap)}" stroke="#cf222e" stroke-dasharray="6 4"><title>cap {_a(usd(cap))}</title></line>'
        )
        out.append(
            f'<text x="{LEFT + plot_w - 4}" y="{y(cap) - 4}" text-anchor="end" font-size="11" fill="#cf222e">'
            f"cap {_a(usd(cap))}</text>"
        )
    for n, s in enumerate(series):
        color = PALETTE[n % len(PALETTE)]
        pts, level = [(x(day_start), y(0))], 0
        for p in s.points:
            pts += [(x(p.at), y(level)), (x(p.at), y(p.spent_micro_usd))]
            level = p.spent_micro_usd
        pts.append((x(until), y(level)))
        out.append(
            f'<g class="series" data-key="{_a(s.key)}" data-policy="{_a(s.policy or "")}" data-spent-micro-usd="{level}">'
            f"<title>{_a(s.key)}: {_a(usd(level))}</title>"
            f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(f"{a},{b}" for a, b in pts)}"/>'
            f'<rect x="{LEFT + plot_w + 6}" y="{TOP + 16 * n + 20}" width="10" height="10" fill="{color}"/>'
            f'<text x="{LEFT + plot_w + 20}" y="{TOP + 16 * n + 29}" font-size="11">{_a(s.key)}</text></g>'
        )
    out.append("</svg>")
    return "".join(out)


def _nice_step(raw: float) -> int:
    """The smallest round step (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10ⁿ micro-USD) at or above `raw`."""
    magnitude = 1
    while magnitude * 10 <= raw:
        magnitude *= 10
    for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if magnitude * m >= raw:
            return int(magnitude * m)
    return magnitude * 10
