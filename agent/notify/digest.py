"""The owner's daily digest: a business's calls since the last digest, the bookings they made, moved
and cancelled, the messages awaiting a callback in the caller's own words, leads, quality flags and
cost. The figures are `business_kpis` (the same as `receptionist report`); the lists are the calls'
own reports (`calls.summary`) and the messages and leads they left."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from agent.brain import Brain
from agent.store.journal.events import NotificationQueued
from agent.store.kpis import business_kpis

DIGEST_KIND = "digest"
PAYLOAD_VERSION = 1

_CALLS = """
SELECT id, started_at, caller_number, outcome, summary FROM calls
WHERE business = %(business)s AND started_at >= %(start)s AND started_at < %(end)s ORDER BY started_at
"""
_MESSAGES = """
SELECT m.caller_name, m.phone, m.body, m.urgency, m.created_at FROM messages m JOIN calls c ON c.id = m.call_id
WHERE c.business = %(business)s AND c.started_at >= %(start)s AND c.started_at < %(end)s
  AND m.callback_requested ORDER BY m.created_at
"""
_LEADS = """
SELECT l.name, l.phone, l.need, l.urgency, l.score, l.created_at FROM leads l JOIN calls c ON c.id = l.call_id
WHERE c.business = %(business)s AND c.started_at >= %(start)s AND c.started_at < %(end)s
ORDER BY l.score DESC, l.created_at
"""


def _clock(value: datetime, brain: Brain) -> str:
    return value.astimezone(brain.tz).strftime("%a %H:%M")


def _when(start: str | None) -> str:
    """A booking's start as the report keeps it (local 'YYYY-MM-DDTHH:MM'), for people."""
    if not start:
        return "?"
    try:
        return datetime.fromisoformat(start).strftime("%a %d %b %H:%M")
    except ValueError:
        return start


async def build_digest(pool: AsyncConnectionPool, brain: Brain, start: datetime, end: datetime) -> dict[str, Any]:
    """The digest's payload for calls started in [start, end): structured (for the webhook) and as
    plain text (for email); `summary` is its one line (for SMS)."""
    name = brain.business.name
    kpis = await business_kpis(pool, start=start, end=end, business=name, tz=brain.business.timezone)
    params = {"business": name, "start": start, "end": end}
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        calls = await (await cur.execute(_CALLS, params)).fetchall()
        messages = await (await cur.execute(_MESSAGES, params)).fetchall()
        leads = await (await cur.execute(_LEADS, params)).fetchall()

    bookings: list[dict[str, Any]] = []
    flagged: list[dict[str, Any]] = []
    for call in calls:
        report = call["summary"] or {}
        for b in report.get("bookings") or []:
            bookings.append({**b, "call_at": call["started_at"].isoformat()})
        flags = [f.get("flag") for f in report.get("flags") or [] if isinstance(f, dict)]
        if flags:
            # the prose summary (CALL_SUMMARY_MODEL) tells the owner what happened on the call to look at
            flagged.append({"call_id": str(call["id"]), "call_at": call["started_at"].isoformat(),
                            "caller_number": call["caller_number"], "flags": flags,
                            "summary": (report.get("prose") or {}).get("text")})  # fmt: skip
    cost = kpis["cost"]
    detail = {
        "from": start.isoformat(), "to": end.isoformat(),
        "calls": kpis["calls"], "answered": kpis["answered"], "outcomes": kpis["outcomes"],
        "bookings": bookings,
        "messages_awaiting_callback": [
            {"caller_name": m["caller_name"], "phone": m["phone"], "message": m["body"],
             "urgency": m["urgency"], "at": m["created_at"].isoformat()} for m in messages
        ],
        "leads": [
            {"name": lead["name"], "phone": lead["phone"], "need": lead["need"], "urgency": lead["urgency"],
             "score": lead["score"], "at": lead["created_at"].isoformat()} for lead in leads
        ],
        "flags_per_100_calls": kpis["flags_per_100_calls"],
        "flagged_calls": flagged,
        "cost": cost,
    }  # fmt: skip
    counts = {a: sum(1 for b in bookings if b.get("action") == a) for a in ("booked", "rescheduled", "cancelled")}
    summary = (
        f"{kpis['calls']} calls since {_clock(start, brain)}: {counts['booked']} booked,"
        f" {counts['rescheduled']} moved, {counts['cancelled']} cancelled,"
        f" {len(messages)} awaiting a callback, {len(leads)} lead{'' if len(leads) == 1 else 's'}"
    )

    lines = [f"{name}: {summary}.", ""]
    lines.append(f"Calls: {kpis['calls']} ({kpis['answered']} answered); outcomes: "
                 + ", ".join(f"{k} {v}" for k, v in kpis["outcomes"].items()))  # fmt: skip
    if bookings:
        lines += ["", "Bookings:"]
        for b in bookings:
            if b.get("action") == "rescheduled":
                lines.append(f"  moved to {_when(b.get('start'))} (code {b.get('code')}, was {b.get('from_code')})")
            elif b.get("action") == "cancelled":
                lines.append(f"  cancelled {b.get('service')} (code {b.get('code')})")
            else:
                lines.append(f"  booked {b.get('service')} {_when(b.get('start'))} (code {b.get('code')})")
    if messages:
        lines += ["", "Messages awaiting a callback:"]
        for m in messages:
            urgency = f", {m['urgency']}" if m["urgency"] else ""
            lines.append(f"  {m['caller_name'] or 'a caller'} ({m['phone'] or 'no number'}{urgency},"
                         f" {_clock(m['created_at'], brain)}): \"{m['body']}\"")  # fmt: skip
    if leads:
        lines += ["", "Leads:"]
        for lead in leads:
            lines.append(f"  {lead['name'] or 'a caller'} ({lead['phone'] or 'no number'}), score {lead['score']}:"
                         f" {lead['need'] or ''}")  # fmt: skip
    if flagged:
        lines += ["", "Calls with quality flags:"]
        for f in flagged:
            lines.append(f"  {_clock(datetime.fromisoformat(f['call_at']), brain)}"
                         f" ({f['caller_number'] or 'no caller ID'}): {', '.join(f['flags'])}")  # fmt: skip
            if f["summary"]:
                lines.append(f"    {f['summary']}")
    if cost["total"] is not None:
        per_call = f", ${cost['per_call']:.2f} a call" if cost["per_call"] is not None else ""
        lines += ["", f"Cost: ${cost['total']:.2f}{per_call}"]
    return {
        "version": PAYLOAD_VERSION, "kind": DIGEST_KIND, "business": name,
        "business_number": brain.business.numbers[0] if brain.business.numbers else brain.business.phone,
        "summary": summary, "text": "\n".join(lines) + "\n", "detail": detail,
    }  # fmt: skip


def digest_key(brain: Brain, day: date, channel: str, destination: str) -> str:
    """One digest per business, local day and destination, whichever sender queues it."""
    return f"digest:{brain.business.name}:{day.isoformat()}/{channel}:{destination}"


def digest_notifications(
    brain: Brain, day: date, payload: dict[str, Any], now: datetime
) -> list[NotificationQueued]:
    """The digest's outbox rows: one per channel and destination of the brain's `notify:`."""
    notify = brain.notify
    targets = [("email", a) for a in notify.email] + [("sms", n) for n in notify.sms]
    if notify.webhook:
        targets.append(("webhook", notify.webhook))
    return [
        NotificationQueued(key=digest_key(brain, day, channel, destination), business=brain.business.name,
                           kind=DIGEST_KIND, channel=channel, destination=destination,
                           payload={**payload, "day": day.isoformat()}, created_at=now)  # fmt: skip
        for channel, destination in targets
    ]
