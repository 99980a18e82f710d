"""`receptionist report`: a business's quality over time as text, JSON or one self-contained HTML file
(inline SVG charts: it opens offline, in any browser, with nothing fetched)."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

_SINCE = re.compile(r"^(\d+)([hdw])$")


class ReportArgsError(ValueError):
    """A window or option the user must fix; the message says how."""


def window(
    since: str | None, start: str | None, end: str | None, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """[start, end) from `--since 7d` (hours, days, weeks) or `--from DATE --to DATE` (inclusive days)."""
    now = now or datetime.now(UTC)
    if since and (start or end):
        raise ReportArgsError("give --since, or --from/--to, not both")
    if start or end:
        try:
            lo = datetime.combine(date.fromisoformat(start), time(0), UTC) if start else None
            hi = (
                datetime.combine(date.fromisoformat(end), time(0), UTC) + timedelta(days=1)
                if end
                else now
            )
        except (ValueError, OverflowError) as e:  # overflow: the day after 9999-12-31
            raise ReportArgsError(f"dates are YYYY-MM-DD ({e})") from None
        if lo is None:
            raise ReportArgsError("--to needs --from")
        if hi <= lo:
            raise ReportArgsError("--to is before --from")
        return lo, hi
    m = _SINCE.match((since or "7d").strip())
    if not m or int(m.group(1)) == 0:
        raise ReportArgsError(
            f"--since takes a count and a unit, like 24h, 7d or 4w (got {since!r})"
        )
    n, unit = int(m.group(1)), m.group(2)
    try:
        return now - {"h": timedelta(hours=n), "d": timedelta(days=n), "w": timedelta(weeks=n)}[
            unit
        ], now
    except OverflowError:  # a window reaching before year 1
        raise ReportArgsError(
            f"--since reaches further back than a date can (got {since!r})"
        ) from None


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def _s(x: float | None) -> str:
    return "—" if x is None else f"{x * 1000:.0f} ms"


def _money(x: float | None) -> str:
    return "—" if x is None else f"${x:.2f}"


def headline(k: dict[str, Any]) -> list[tuple[str, str]]:
    """The figures an owner reads first, as (label, value)."""
    bc = k["booking_completion"]
    return [
        ("Calls", str(k["calls"])),
        ("Answered", str(k["answered"])),
        ("Booked", str(k["outcomes"]["booked"])),
        ("Booking completion", f"{_pct(bc['rate'])} ({bc['booked']} of {bc['calls_with_booking_intent']})"),
        ("Handed to a person", _pct(k["handoff_rate"])),
        ("Transfers that connected", _pct(k["transfer_success"])),
        ("Callback requests", str(k["callback_requests"])),
        ("Hung up during / after the greeting", f"{k['hung_up']['during_greeting']} / {k['hung_up']['after_greeting']}"),
        ("Response gap p50 / p95", f"{_s(k['response_gap_s']['p50'])} / {_s(k['response_gap_s']['p95'])}"),
        ("Time to greeting p95", _s(k["time_to_greeting_p95_s"])),
        ("Grounding violations per 100 calls", "—" if k["violations_per_100_calls"] is None else str(k["violations_per_100_calls"])),
        ("Cost per call / per booking", f"{_money(k['cost']['per_call'])} / {_money(k['cost']['per_booking'])}"),
    ]  # fmt: skip


def as_text(k: dict[str, Any]) -> str:
    who = k["business"] or "all businesses"
    lines = [f"{who}: calls from {k['from'][:16]} to {k['to'][:16]} ({k['timezone']})", ""]
    width = max(len(label) for label, _ in headline(k))
    lines += [f"  {label:<{width}}  {value}" for label, value in headline(k)]
    if k["flags_per_100_calls"]:
        lines += ["", "  Flags per 100 calls:"]
        lines += [f"    {flag:<26} {n}" for flag, n in k["flags_per_100_calls"].items()]
    for flow, steps in k["funnel"].items():
        lines += ["", f"  {flow.capitalize()} funnel (calls that reached each step):"]
        lines += [f"    {step:<26} {n:>5}" for step, n in steps.items()]
    if k["tools"]:
        lines += ["", "  Tools (calls, errors, latency p95):"]
        lines += [
            f"    {t['tool']:<26} {t['calls']:>5} {t['errors']:>5} {t['latency_p95_ms']} ms"
            for t in k["tools"]
        ]
    return "\n".join(lines)


def _bars(title: str, items: list[tuple[str, float]], unit: str = "") -> str:
    """A horizontal-axis bar chart as inline SVG."""
    w, h, pad = 720, 200, 30
    top = max((v for _, v in items), default=0) or 1
    bw = (w - 2 * pad) / max(len(items), 1)
    bars = []
    for i, (label, v) in enumerate(items):
        bh = (h - 2 * pad) * v / top
        x = pad + i * bw
        bars.append(
            f'<rect x="{x + 2:.1f}" y="{h - pad - bh:.1f}" width="{max(bw - 4, 1):.1f}" height="{bh:.1f}" fill="#3b7dd8">'
            f"<title>{html.escape(label)}: {v:g}{unit}</title></rect>"
            f'<text x="{x + bw / 2:.1f}" y="{h - pad + 14}" font-size="10" text-anchor="middle">{html.escape(label)}</text>'
        )
        if v:
            bars.append(
                f'<text x="{x + bw / 2:.1f}" y="{h - pad - bh - 3:.1f}" font-size="10" text-anchor="middle">{v:g}</text>'
            )
    return (
        f"<figure><figcaption>{html.escape(title)}</figcaption>"
        f'<svg role="img" aria-label="{html.escape(title)}" viewBox="0 0 {w} {h}" width="{w}" height="{h}">'
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#999"/>'
        + "".join(bars)
        + "</svg></figure>"
    )


def charts(k: dict[str, Any]) -> str:
    """Calls by hour, bookings per day and flags per 100 calls, as inline SVG (for the report page and
    the console's Quality page)."""
    hours = [(f"{h:02d}", float(k["calls_by_hour"].get(h, 0))) for h in range(24)]
    days = [(d["day"][5:], float(d["bookings"])) for d in k["bookings_per_day"]]
    flags = [(f, float(n)) for f, n in k["flags_per_100_calls"].items()]
    return "\n".join([
        _bars("Calls by hour of day", hours),
        _bars("Bookings per day", days) if days else "<p>No bookings in this window.</p>",
        _bars("Quality flags per 100 calls", flags) if flags else "<p>No quality flags raised.</p>",
    ])  # fmt: skip


def as_html(k: dict[str, Any]) -> str:
    who = html.escape(k["business"] or "All businesses")
    rows = "".join(
        f"<tr><th>{html.escape(a)}</th><td>{html.escape(b)}</td></tr>" for a, b in headline(k)
    )
    tools = "".join(
        f"<tr><td>{html.escape(t['tool'])}</td><td>{t['calls']}</td><td>{t['errors']}</td>"
        f"<td>{t['latency_p95_ms']} ms</td></tr>"
        for t in k["tools"]
    )
    funnels = "".join(
        f"<h2>{html.escape(flow.capitalize())} funnel</h2><table><tr><th>step</th><th>calls</th></tr>"
        + "".join(f"<tr><td>{html.escape(step)}</td><td>{n}</td></tr>" for step, n in steps.items())
        + "</table>"
        for flow, steps in k["funnel"].items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{who}: calls report</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #222; max-width: 780px }}
table {{ border-collapse: collapse; margin: 1em 0 }} th, td {{ text-align: left; padding: 3px 12px 3px 0 }}
figure {{ margin: 1.5em 0 }} figcaption {{ font-weight: 600; margin-bottom: .3em }}
</style></head><body>
<h1>{who}</h1>
<p>Calls from {html.escape(k["from"][:16])} to {html.escape(k["to"][:16])} ({html.escape(k["timezone"])})</p>
<table>{rows}</table>
{charts(k)}
{funnels}
<h2>Tools</h2>
<table><tr><th>tool</th><th>calls</th><th>errors</th><th>latency p95</th></tr>{tools}</table>
</body></html>
"""
