"""What a finished call tells the owner at once: an urgent message, an escalation that reached nobody,
a hot lead, a grounding violation, a caller no model heard (every line busy, the model unreachable). Built from the call's report and records when the call ends, and
journaled right after the call's end, one outbox row per channel and destination. (A call no worker
could take is told of by agent/notify/voice_fallback.py as Twilio answers it, through `notifications`.)

Why at the end and not when the cause is recorded: the report is the one place that knows the
escalation's result (a refused transfer is only known after the hand-off) and every cause at once, the
journal makes it as durable as the call's own records (spilled to disk in an outage, replayed once),
and the call row it points at is already in Postgres when the notification is. The cost is that an
urgent message waits for the hang-up, which is moments after the agent took it.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent.brain.schema.notify import NotificationKind
from agent.store.journal.events import NotificationQueued

if TYPE_CHECKING:
    from agent.brain import BrainDirectory
    from agent.brain.schema import Brain
    from agent.call import CallContext
    from agent.store.journal.rows import Notices

PAYLOAD_VERSION = 1
URGENT = ("urgent", "emergency")  # of agent.tools.leads.Urgency
ESCALATION_FAILED = ("refused", "people_unavailable", "no_destination")  # call report results


def _last_result(call: CallContext, tool: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(arguments, result) of the tool's last successful call."""
    for entry in reversed(call.tool_log):
        if entry.name == tool and entry.error is None and entry.result is not None:
            try:
                out = json.loads(entry.result)
            except ValueError:
                continue
            if isinstance(out, dict):
                return entry.arguments, out
    return None


def _causes(call: CallContext, report: dict[str, Any]) -> list[tuple[NotificationKind, str, dict]]:
    """(kind, one-sentence summary, details) for each thing the owner must hear about now."""
    found: list[tuple[NotificationKind, str, dict]] = []
    message = report.get("message")
    taken = _last_result(call, "take_message")
    if message and message.get("urgency") in URGENT and taken is not None:
        args, out = taken
        found.append(urgent_message(
            urgency=message["urgency"], caller_name=args.get("caller_name"), callback_number=out.get("callback_number"),
            message=args.get("message"), callback_requested=message.get("callback_requested"),
            caller_number=call.caller_number,
        ))  # fmt: skip
    escalation = report.get("escalation")
    if escalation and escalation.get("result") in ESCALATION_FAILED:
        why = {"refused": "the transfer was refused or not answered",
               "people_unavailable": "nobody was available", "no_destination": "nobody can take calls"}  # fmt: skip
        then = " The caller left a message." if escalation.get("then") == "message" else ""
        found.append((
            "escalation_failed",
            f"A caller needed a person ({escalation.get('reason') or 'no reason given'}) but "
            f"{why[escalation['result']]}.{then} Caller: {call.caller_number or 'unknown'}.",
            {k: escalation.get(k) for k in ("reason", "result", "detail", "summary", "then")},
        ))  # fmt: skip
    lead = report.get("lead")
    captured = _last_result(call, "capture_lead")
    hot_score = call.brain.leads.hot_score
    if lead and lead.get("score") is not None and lead["score"] >= hot_score and captured is not None:
        args, _ = captured
        found.append((
            "hot_lead",
            f"Hot lead (score {lead['score']}): {args.get('name', 'a caller')}, {args.get('need', '')}."
            f" Call back: {args.get('phone') or call.caller_number or 'no number'}.",
            {"score": lead["score"], "hot_score": hot_score, "name": args.get("name"),
             "need": args.get("need"), "phone": args.get("phone") or call.caller_number,
             "urgency": lead.get("urgency"), "answers": lead.get("answers") or {}},
        ))  # fmt: skip
    unanswered = _answered_without_model(call)
    if unanswered is not None:
        found.append(unanswered)
    if call.violations:
        first = call.violations[0]
        more = f" (and {len(call.violations) - 1} more)" if len(call.violations) > 1 else ""
        found.append((
            "grounding_violation",
            f"The assistant said \"{first['claim']}\", which the brain file contradicts"
            f" ({first['correction']}){more}.",
            {"violations": list(call.violations)},
        ))  # fmt: skip
    return found


def _answered_without_model(call: CallContext) -> tuple[NotificationKind, str, dict] | None:
    """A caller no model heard: every line was busy (agent/overflow.py), or the model could not be
    reached (agent/fallback.py). Whatever they left, nobody has judged how urgent it is, so the owner
    hears of it now; not when the model-free path put them through to a person."""
    if call.extras.get("all_lines_busy"):
        why, because = "all_lines_busy", "every line was busy"
    elif call.extras.get("model_unreachable") and call.outcome != "escalated":
        why, because = "model_unreachable", "the AI model could not be reached"
    else:
        return None
    voicemail = call.extras.get("voicemail")
    left = (f"they left a {voicemail['seconds']:.0f} s voicemail: play it on the call's page in the console"
            if voicemail else "they left no message")  # fmt: skip
    return (
        "assistant_unreachable",
        f"Your assistant could not take a call from {call.caller_number or 'an unknown number'} because "
        f"{because}; {left}.",
        {"why": why, "voicemail_seconds": voicemail["seconds"] if voicemail else None},
    )


def urgent_message(
    *, urgency: str, caller_name: str | None, callback_number: str | None, message: str | None,
    callback_requested: bool | None, caller_number: str | None,
) -> tuple[NotificationKind, str, dict]:  # fmt: skip
    """(kind, summary, details) of an urgent or emergency message the caller left."""
    who = caller_name or "a caller"
    number = callback_number or caller_number or "no number"
    return (
        "urgent_message",
        f"{urgency.capitalize()} message from {who} ({number}): {message or ''}",
        {"caller_name": caller_name, "callback_number": callback_number, "message": message, "urgency": urgency,
         "callback_requested": callback_requested},
    )  # fmt: skip


async def of_lost_call(
    conn: Any, brain: Brain, call_id: uuid.UUID, *, ended_at: datetime, end_reason: str
) -> list[NotificationQueued]:
    """What a call whose worker died mid-call still tells the owner at once, from what reached Postgres:
    its last urgent message. The call's own ending never came, and with it went at_once()."""
    cur = await conn.execute(
        "SELECT c.caller_number, m.caller_name, m.phone, m.body, m.callback_requested, m.urgency"
        " FROM messages m JOIN calls c ON c.id = m.call_id WHERE m.call_id = %s AND m.urgency = ANY(%s)"
        " ORDER BY m.created_at DESC LIMIT 1",
        (call_id, list(URGENT)),
    )
    row = await cur.fetchone()
    if row is None:
        return []
    caller_number, name, phone, body, callback_requested, urgency = row
    kind, summary, detail = urgent_message(
        urgency=urgency, caller_name=name, callback_number=phone, message=body,
        callback_requested=callback_requested, caller_number=caller_number,
    )  # fmt: skip
    found = {"id": str(call_id), "caller_number": caller_number, "outcome": "error", "end_reason": end_reason,
             "ended_at": ended_at.isoformat()}  # fmt: skip
    return notifications(brain, kind, summary, detail, call_id=call_id, call=found)


class LostCallNotices:
    """What ending a lost call tells its owner (agent/live/lost_calls.py), by the business it registered
    under: the queries to run in the ending's transaction."""

    def __init__(self, brains: BrainDirectory) -> None:
        self._brains = {b.business.name: b for b in brains.all}

    def __call__(self, business: str, call_id: uuid.UUID, ended_at: datetime, end_reason: str) -> Notices | None:
        brain = self._brains.get(business)
        if brain is None:
            return None

        async def told(conn: Any) -> list[NotificationQueued]:
            return await of_lost_call(conn, brain, call_id, ended_at=ended_at, end_reason=end_reason)

        return told


def at_once(call: CallContext) -> list[NotificationQueued]:
    """The outbox rows a finished call asks for (empty without a report or a channel)."""
    report = call.report
    if report is None:
        return []
    found = {"id": str(call.call_id), "caller_number": call.caller_number, "outcome": report.get("outcome"),
             "end_reason": report.get("end_reason"), "ended_at": call.clock().isoformat()}  # fmt: skip
    events = []
    for kind, summary, detail in _causes(call, report):
        events += notifications(call.brain, kind, summary, detail, call_id=call.call_id, call=found)
    return events


def notifications(
    brain: Brain, kind: NotificationKind, summary: str, detail: dict[str, Any], *, call_id: uuid.UUID,
    call: dict[str, Any], created_at: datetime | None = None,
) -> list[NotificationQueued]:  # fmt: skip
    """One outbox row per channel and destination the brain tells at once of this kind (none when its
    `at_once` leaves the kind out, or it has no channel)."""
    notify = brain.notify
    if kind not in notify.at_once:
        return []
    targets = [("email", a) for a in notify.email] + [("sms", n) for n in notify.sms]
    if notify.webhook:
        targets.append(("webhook", notify.webhook))
    business = brain.business
    payload = {
        "version": PAYLOAD_VERSION,
        "kind": kind,
        "business": business.name,
        "business_number": business.numbers[0] if business.numbers else business.phone,
        "summary": summary,
        "call": call,
        "detail": detail,
    }
    when = {"created_at": created_at} if created_at else {}
    return [
        NotificationQueued(
            key=f"{call_id}/{kind}/{channel}:{destination}", business=business.name, kind=kind, channel=channel,
            destination=destination, payload=payload, call_id=call_id, **when,
        )  # fmt: skip
        for channel, destination in targets
    ]
