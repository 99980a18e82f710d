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


# -- the voicemail's audio while Twilio still holds it (migration 019) ---------------------------------
# how long a process trying a recording keeps it from the others' retry loops
_CLAIMED_UNTIL = "now() + interval '10 minutes'"


async def recording_at_twilio(pool: AsyncConnectionPool, url: str, call_sid: str) -> None:
    """Twilio holds this call's voicemail audio until it is ours and deleted there; a request Twilio
    repeats notes it once. Its message is looked up now: one erased already leaves it to be deleted.
    Claimed for 10 minutes, as `recordings_due` claims it: the caller is trying it now."""
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO twilio_recordings (url, call_sid, message_id, next_at)"
            f" SELECT %s, %s, (SELECT id FROM messages WHERE id = %s), {_CLAIMED_UNTIL}"
            " ON CONFLICT (url) DO NOTHING",
            (url, call_sid, message_id_of(call_sid)),
        )  # fmt: skip


async def recording_needs_fetching(pool: AsyncConnectionPool, url: str) -> bool:
    """True while its message is kept without its audio; False once the audio is ours, or the message
    is gone (erased): then only Twilio's copy is left to delete."""
    async with pool.connection() as conn:
        row = await (await conn.execute(
            "SELECT m.audio_path IS NULL FROM twilio_recordings r JOIN messages m ON m.id = r.message_id"
            " WHERE r.url = %s", (url,),
        )).fetchone()  # fmt: skip
    return bool(row and row[0])


async def recording_done(pool: AsyncConnectionPool, url: str) -> None:
    """Ours (or erased) and deleted at Twilio: nothing left to do."""
    async with pool.connection() as conn:
        await conn.execute("DELETE FROM twilio_recordings WHERE url = %s", (url,))


async def recording_failed(pool: AsyncConnectionPool, url: str, problem: str, *, first_wait_s: float) -> float:
    """Tried and failed: tried again after `first_wait_s`, doubled each time up to 6 hours. Returns the
    wait."""
    async with pool.connection() as conn:
        row = await (await conn.execute(
            "UPDATE twilio_recordings SET tries = tries + 1, last_error = %s,"
            " next_at = now() + make_interval(secs => least(%s * power(2, least(tries, 16)), 21600)) WHERE url = %s"
            " RETURNING extract(epoch FROM next_at - now())", (problem[:500], first_wait_s, url),
        )).fetchone()  # fmt: skip
    return float(row[0]) if row else 0.0


async def recordings_due(pool: AsyncConnectionPool, limit: int = 20) -> list[tuple[str, str]]:
    """(url, call_sid) of recordings whose next try is due, each claimed for 10 minutes so another
    `notify inbound` leaves it alone meanwhile."""
    async with pool.connection() as conn:
        rows = await (await conn.execute(
            f"UPDATE twilio_recordings SET next_at = {_CLAIMED_UNTIL} WHERE url IN"
            " (SELECT url FROM twilio_recordings WHERE next_at <= now() ORDER BY next_at LIMIT %s"
            " FOR UPDATE SKIP LOCKED) RETURNING url, call_sid", (limit,),
        )).fetchall()  # fmt: skip
    return [(r[0], r[1]) for r in rows]
