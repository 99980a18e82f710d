"""The rows each journal event writes in Postgres (one SQL statement per event type, idempotent), and
the ending a survivor gives a call whose process died."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from agent.store.journal.encoding import json_default
from agent.store.journal.events import CallEnded, NotificationQueued

log = logging.getLogger("receptionist.journal")

# the notifications a lost call's ending sends, read in its ending's transaction (agent/notify/at_once.py)
Notices = Callable[[psycopg.AsyncConnection[Any]], Awaitable[Sequence[NotificationQueued]]]

# the Postgres NOTIFY channel on which a call's ending is announced: {"business": ..., "ended_at": ...}
CALL_ENDED_CHANNEL = "call_ended"

EVENT_SQL: dict[str, tuple[str, Callable[[Any], Sequence[Any]]]] = {
    "call_started": (
        "INSERT INTO calls (id, business, room, sip_call_id, twilio_call_sid, caller_number,"
        " caller_verstat, dialed_number, started_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        lambda e: (e.call_id, e.business, e.room, e.sip_call_id, e.twilio_call_sid,
                   e.caller_number, e.caller_verstat, e.dialed_number, e.started_at),
    ),
    "call_answered": (
        "UPDATE calls SET answered_at = COALESCE(answered_at, %s) WHERE id = %s",
        lambda e: (e.answered_at, e.call_id),
    ),
    "turn": (
        "INSERT INTO transcript_turns (id, call_id, seq, role, text, started_at, ended_at,"
        " interrupted) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        lambda e: (e.id, e.call_id, e.seq, e.role, e.text, e.started_at, e.ended_at, e.interrupted),
    ),
    "tool_call": (
        "INSERT INTO tool_calls (id, call_id, seq, name, arguments, result, error, latency_ms,"
        " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        lambda e: (e.id, e.call_id, e.seq, e.name, Jsonb(e.arguments, dumps=_dumps), e.result,
                   e.error, e.latency_ms, e.created_at),
    ),
    "lead": (
        "INSERT INTO leads (id, call_id, business, name, phone, need, urgency, answers, score,"
        " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        lambda e: (e.id, e.call_id, e.business, e.name, e.phone, e.need, e.urgency,
                   Jsonb(e.answers, dumps=_dumps), e.score, e.created_at),
    ),
    "message": (
        "INSERT INTO messages (id, call_id, business, caller_name, phone, body,"
        " callback_requested, urgency, audio_path, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        lambda e: (e.id, e.call_id, e.business, e.caller_name, e.phone, e.body,
                   e.callback_requested, e.urgency, e.audio_path, e.created_at),
    ),
    "violation": (
        "INSERT INTO violations (id, call_id, turn_seq, kind, claim, correction, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        lambda e: (e.id, e.call_id, e.turn_seq, e.kind, e.claim, e.correction, e.created_at),
    ),
    "flow_step": (
        "INSERT INTO call_events (id, call_id, seq, flow, step, refused, at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        lambda e: (e.id, e.call_id, e.seq, e.flow, e.step, e.refused, e.at),
    ),
    # the first ending wins: a replica that finds a call lost never overwrites the call's own ending.
    # The ending is announced on CALL_ENDED_CHANNEL in the same transaction, so every console replica
    # hears it once it is committed, and never one that rolled back
    "call_ended": (
        "WITH ended AS (UPDATE calls SET ended_at = %s, outcome = %s, end_reason = %s, summary = %s"
        " WHERE id = %s AND ended_at IS NULL RETURNING business, ended_at)"
        f" SELECT pg_notify('{CALL_ENDED_CHANNEL}', json_build_object('business', business,"
        " 'ended_at', ended_at)::text) FROM ended",
        lambda e: (e.ended_at, e.outcome, e.end_reason,
                   None if e.summary is None else Jsonb(e.summary, dumps=_dumps), e.call_id),
    ),
    # into the report written by call_ended (journaled before it); a report that never made it
    # there gets no summary of its own
    "call_summarised": (
        "UPDATE calls SET summary = jsonb_set(summary, '{prose}', %s) WHERE id = %s"
        " AND summary IS NOT NULL",
        lambda e: (Jsonb(e.prose, dumps=_dumps), e.call_id),
    ),
    "recording_saved": (
        "UPDATE calls SET recording_path = %s, recording_seconds = %s WHERE id = %s",
        lambda e: (e.path, e.seconds, e.call_id),
    ),
    "notification": (
        "INSERT INTO outbox (key, business, call_id, kind, channel, destination, payload,"
        " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING",
        lambda e: (e.key, e.business, e.call_id, e.kind, e.channel, e.destination,
                   Jsonb(e.payload, dumps=_dumps), e.created_at),
    ),
}  # fmt: skip


def _dumps(value: Any) -> str:
    return json.dumps(value, default=json_default)


async def end_lost_call(
    conn: psycopg.AsyncConnection[Any], call_id: uuid.UUID, *, end_reason: str, ended_at: datetime,
    then: Notices | None = None,
) -> bool | None:  # fmt: skip
    """Finalise a call whose process died before its own ending (outcome `error`): True if this
    ended it, False if it had ended already, None while its row is not in Postgres yet (its records
    may still be in a spill file). `then` names the notifications the ending sends, queued in the same
    transaction: once, with the ending."""
    event = CallEnded(call_id=call_id, outcome="error", end_reason=end_reason, ended_at=ended_at)
    sql, params = EVENT_SQL[event.type]
    async with conn.transaction():
        cur = await conn.execute(sql, params(event))
        if cur.rowcount:
            if then is not None:
                await _queue_notices(conn, call_id, then)
            return True
        cur = await conn.execute("SELECT 1 FROM calls WHERE id = %s", (call_id,))
        found = await cur.fetchone()
    return False if found else None


async def _queue_notices(
    conn: psycopg.AsyncConnection[Any], call_id: uuid.UUID, then: Notices
) -> None:
    """The notices an ending sends, in a savepoint of its transaction: a notice that cannot be made
    (a bug, a row it cannot read) is logged, and the call is ended all the same."""
    try:
        async with conn.transaction():
            sql, params = EVENT_SQL["notification"]
            for note in await then(conn):
                await conn.execute(sql, params(note))
    except (psycopg.OperationalError, psycopg.InterfaceError):
        raise  # Postgres itself is away: nothing is ended, the call is offered again
    except Exception:
        log.exception("call %s ended without its owner's notices", call_id)
