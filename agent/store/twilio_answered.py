"""The records of calls Twilio answered for us while none of our workers could (agent/notify/voice_fallback.py):
a call row from Twilio's first request, then the hand-off's result or the caller's voicemail.

Twilio may send a request more than once, and a voicemail is announced twice (the recording's end and
its status callback), so every write here is keyed by Twilio's CallSid and can be repeated.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

END_REASON = "fleet_unreachable"
# a call's and its voicemail's ids, derived from Twilio's CallSid: a repeated request finds the same rows
_IDS = uuid.UUID("3b7d1a5e-8c0f-4f3a-9a43-5f4c3e2b9d10")


def call_id_of(call_sid: str) -> uuid.UUID:
    return uuid.uuid5(_IDS, f"call:{call_sid}")


def message_id_of(call_sid: str) -> uuid.UUID:
    return uuid.uuid5(_IDS, f"voicemail:{call_sid}")


async def open_call(
    pool: AsyncConnectionPool, call_sid: str, *, business: str, caller: str | None, dialed: str | None,
    at: datetime,
) -> tuple[uuid.UUID, bool]:  # fmt: skip
    """The call row, answered and ended at `at` (outcome `error`) until a later request says more; True
    when it is new (not a request Twilio repeated). Any request of the call may be the first to reach
    Postgres (its first one may still wait on another process's disk): the row starts at the
    earliest `at` given."""
    call_id = call_id_of(call_sid)
    async with pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO calls (id, business, twilio_call_sid, caller_number, dialed_number, started_at,"
            " answered_at, ended_at, outcome, end_reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'error', %s)"
            " ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at,"
            " answered_at = least(calls.answered_at, excluded.answered_at)"
            " WHERE excluded.started_at < calls.started_at RETURNING (xmax = 0)",
            (call_id, business, call_sid, caller, dialed, at, at, at, END_REASON),
        )  # fmt: skip
        row = await cur.fetchone()  # none when the row was there already and started no later
    return call_id, bool(row and row[0])


async def end_call(pool: AsyncConnectionPool, call_sid: str, *, outcome: str | None, at: datetime) -> None:
    """The call went on until `at`; `outcome` (escalated, message) when it reached one."""
    async with pool.connection() as conn:
        await _ended(conn, call_sid, outcome, at)


async def _ended(conn: AsyncConnection, call_sid: str, outcome: str | None, at: datetime) -> None:
    await conn.execute(
        "UPDATE calls SET ended_at = greatest(ended_at, %s), outcome = coalesce(%s, outcome) WHERE id = %s",
        (at, outcome, call_id_of(call_sid)),
    )


async def keep_voicemail(
    pool: AsyncConnectionPool, call_sid: str, *, business: str, phone: str | None, body: str, at: datetime
) -> uuid.UUID:
    """The voicemail's `messages` row (once, whichever of Twilio's requests comes first), and the call's
    outcome `message`."""
    message_id = message_id_of(call_sid)
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO messages (id, call_id, business, phone, body, callback_requested, urgency, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, 'soon', %s) ON CONFLICT (id) DO NOTHING",
            (message_id, call_id_of(call_sid), business, phone, body, phone is not None, at),
        )  # fmt: skip
        await _ended(conn, call_sid, "message", at)
    return message_id


async def voicemail_audio(pool: AsyncConnectionPool, call_sid: str) -> str | None:
    """Where the voicemail's audio is kept, once it is."""
    async with pool.connection() as conn:
        row = await (await conn.execute(
            "SELECT audio_path FROM messages WHERE id = %s", (message_id_of(call_sid),)
        )).fetchone()  # fmt: skip
    return row[0] if row else None


async def name_voicemail_audio(pool: AsyncConnectionPool, call_sid: str, location: str) -> bool:
    """The voicemail's row names its audio; False when the row is gone (erased meanwhile)."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "UPDATE messages SET audio_path = %s WHERE id = %s", (location, message_id_of(call_sid))
        )
    return cur.rowcount == 1
