"""Callers' personal data over time: the retention sweep (each brain's `privacy.retain_days`) and the
erasure of one phone number (`receptionist forget`). Both work in short batches of their own
transactions, so live calls writing beside them never wait behind a long lock.

What stays and what goes is the same for both (README, "Personal data"): a call row keeps what the
business measures (outcome, timings, end reason, the report's flags and bookings) and loses who called;
transcripts, tool calls, guard violations, leads, messages and the notifications sent about them (the
outbox) are deleted; appointments keep their service, time, status and code and lose the customer's
name and number. The owner's CalDAV calendar follows through the outbox (a row per event, which
carries no personal data): a cancelled booking's event is deleted, and a stripped one is rewritten without
the caller's name and number.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import phonenumbers
import psycopg

from agent.log_privacy import mask_numbers
from agent.store.audio import KINDS, AudioStore, stored

log = logging.getLogger(__name__)

BATCH_ROWS = 1000
# one fixed advisory-lock key: one retention sweep at a time across the fleet
_RETENTION_LOCK = zlib.crc32(b"receptionist.retention")
# every table personal data lives in, in the order a sweep or an erasure reaches them (a call row
# last, so an interrupted run finds its calls' records again next time)
TABLES = ("recordings", "voicemails", "transcript_turns", "tool_calls", "violations", "leads", "messages", "appointments", "outbox",
          "calls")

# the call report's fields that say who called or what they said (`agent/call_report.py`; the
# prose summary, `agent/call_summary.py`, retells the transcript; a warm transfer's briefing,
# `agent/warm_transfer.py`, tells the person the caller's number and what they need)
_REPORT_PERSONAL = ("{message,callback_number}", "{lead,answers}", "{escalation,summary}", "{prose}",
                    "{escalation,briefing}")  # fmt: skip


def _stripped(paths: tuple[str, ...]) -> str:
    """calls.summary without these fields."""
    return "summary" + "".join(f" #- '{path}'" for path in paths)


_STRIP_REPORT = _stripped(_REPORT_PERSONAL)
# a call row without its caller: the room name holds the caller's number (LiveKit names a SIP
# room `call-_<number>_<random>`), and the SIP and Twilio ids lead to provider logs that hold it too
_STRIP_CALL = (
    "caller_number = NULL, room = NULL, sip_call_id = NULL, twilio_call_sid = NULL,"
    f" summary = {_STRIP_REPORT}, personal_erased_at = now()"
)
_STRIP_APPOINTMENT = "customer_name = NULL, customer_phone = NULL"

Counts = dict[str, dict[str, int]]  # table -> {"deleted" | "anonymised" | "cancelled": rows}


@dataclass(frozen=True)
class _Step:
    """Rows of one table matching `where`: deleted, or updated with `set_sql` (which must take them
    out of `where`, so batches end and a second run finds nothing)."""

    table: str
    where: str
    params: tuple[Any, ...]
    set_sql: str | None = None

    @property
    def action(self) -> str:
        return "deleted" if self.set_sql is None else "anonymised"


class AudioUnreachable(Exception):
    """Audio to erase is in a bucket this command cannot reach: nothing is changed, so that no row stops
    leading to a caller's voice that is still stored."""


Audio = dict[str, tuple[str, tuple[Any, ...]]]  # a kind of audio (agent/store/audio.py) -> its rows' where


async def _require_reachable(conn: psycopg.AsyncConnection[Any], audio: AudioStore | None, rows: Audio) -> None:
    """Refuse before anything is changed when a row to erase names an object outside `audio`'s bucket
    (or when no bucket is set here): its row would be emptied and the voice kept where nobody finds it."""
    for kind, (where, params) in rows.items():
        table, column = KINDS[kind].table, KINDS[kind].column
        found = await (await conn.execute(
            f"SELECT {column} FROM {table} WHERE {column} LIKE 's3://%%' AND ({where})", params
        )).fetchall()  # fmt: skip
        away = [loc for (loc,) in found if audio is None or audio.bucket.key_of(loc) is None]
        if away:
            raise AudioUnreachable(
                f"{len(away)} of the {kind} to erase are in a bucket this command cannot reach ({away[0]}): "
                "set AUDIO_BUCKET and the S3_* settings as the workers have them; nothing was changed"
            )


async def _erase_audio(
    conn: psycopg.AsyncConnection[Any], kind: str, where: str, params: tuple[Any, ...], dry_run: bool,
    audio: AudioStore | None,
) -> dict[str, int]:  # fmt: skip
    """Delete the audio (recordings, voicemails) of the rows matching `where` and unlink it from them.

    A recording or a voicemail holds every word and the voice itself, so it goes with the first of the
    call's records (a voicemail before its message row). A file on a worker's disk is deleted where this
    runs (RECORDINGS_DIR, VOICEMAIL_DIR): one not found here is counted `missing` and its path logged,
    so an operator can remove it where it lives (a worker moving audio to a bucket deletes it within
    the hour, agent/store/audio.py); an object in the bucket is deleted there."""
    table, column, clear_also = KINDS[kind].table, KINDS[kind].column, KINDS[kind].clear_also
    cur = await conn.execute(
        f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL AND ({where})", params
    )
    rows = await cur.fetchall()
    if dry_run:
        return {"deleted": len(rows)} if rows else {}
    deleted = missing = 0
    for row_id, location in rows:
        gone = False
        while location is not None:
            gone = await _delete_audio(table, row_id, location, audio) or gone
            unlinked = await conn.execute(
                f"UPDATE {table} SET {column} = NULL{clear_also} WHERE id = %s AND {column} = %s", (row_id, location)
            )
            if unlinked.rowcount:
                break
            # a worker moved it to the bucket meanwhile: delete it where the row says it is now
            now = await (await conn.execute(f"SELECT {column} FROM {table} WHERE id = %s", (row_id,))).fetchone()
            location = now[0] if now else None
        deleted, missing = (deleted + 1, missing) if gone else (deleted, missing + 1)
    return {k: n for k, n in (("deleted", deleted), ("missing", missing)) if n}


async def _delete_audio(table: str, row_id: Any, location: str, audio: AudioStore | None) -> bool:
    """Delete a row's audio where it is: an object in the bucket, or a file here. False when it could
    not be reached from here (logged, for an operator to delete where it is)."""
    if stored(location):
        if audio is not None and await audio.delete(location):
            return True
        log.warning("audio of %s %s is in a bucket this command cannot reach (%s): set AUDIO_BUCKET and the "
                    "S3_* settings as the workers have them, or delete it there", table, row_id, location)  # fmt: skip
        return False
    try:
        await asyncio.to_thread(Path(location).unlink)
        return True
    except FileNotFoundError:
        log.warning("audio of %s %s not found here (%s): delete it where the worker keeps it", table, row_id, location)
        return False


def _empty_counts() -> Counts:
    return {table: {} for table in TABLES}


async def _apply(conn: psycopg.AsyncConnection[Any], steps: list[_Step], dry_run: bool) -> Counts:
    counts = _empty_counts()
    for step in steps:
        if dry_run:
            cur = await conn.execute(f"SELECT count(*) FROM {step.table} WHERE ({step.where})", step.params)
            row = await cur.fetchone()
            done = int(row[0]) if row else 0
        else:
            done = 0
            picked = f"id IN (SELECT id FROM {step.table} WHERE ({step.where}) LIMIT {BATCH_ROWS})"
            sql = (
                f"DELETE FROM {step.table} WHERE {picked}"
                if step.set_sql is None
                else f"UPDATE {step.table} SET {step.set_sql} WHERE {picked}"
            )
            while True:  # autocommit: each batch is its own short transaction
                cur = await conn.execute(sql, step.params)
                done += cur.rowcount
                if cur.rowcount < BATCH_ROWS:
                    break
        per_table = counts[step.table]
        per_table[step.action] = per_table.get(step.action, 0) + done
    return counts


async def _connect(dsn: str) -> psycopg.AsyncConnection[Any]:
    # a statement waits at most 5 s for a row a live call holds, then fails loudly instead of queueing
    # the call behind it; a run that stops midway is picked up where it left off by the next
    return await psycopg.AsyncConnection.connect(
        dsn, autocommit=True, options="-c lock_timeout=5000 -c statement_timeout=120000"
    )


# the appointments matching a `where` (over `appointments a`) that were written to an owner's CalDAV
# calendar, and where: read from the outbox before its rows about them are deleted
_SYNCED = (
    "SELECT DISTINCT a.id, o.business, o.destination FROM appointments a JOIN outbox o"
    " ON o.channel = 'calendar' AND o.payload->>'appointment_id' = a.id::text WHERE {where}"
)


async def _synced_events(
    conn: psycopg.AsyncConnection[Any], where: str, params: tuple[Any, ...]
) -> list[tuple[Any, str, str]]:
    cur = await conn.execute(_SYNCED.format(where=where), params)
    return list(await cur.fetchall())


async def _queue_calendar_updates(conn: psycopg.AsyncConnection[Any], synced: list[tuple[Any, str, str]]) -> int:
    """An outbox row per event whose booking was just cancelled or stripped: the calendar channel
    writes the booking's current state (no event once cancelled; the event without the caller's name
    and number once stripped). The row names the appointment only, so it is not personal data itself,
    and a second run finds the booking already stripped and queues nothing."""
    queued = 0
    for appointment_id, business, destination in synced:
        payload = {"version": 1, "kind": "calendar_erased", "business": business,
                   "appointment_id": str(appointment_id), "summary": "a caller's details erased"}  # fmt: skip
        cur = await conn.execute(
            "INSERT INTO outbox (key, business, kind, channel, destination, payload, created_at)"
            " VALUES (%s, %s, 'calendar_erased', 'calendar', %s, %s, now()) ON CONFLICT (key) DO NOTHING",
            (f"erased/calendar/{appointment_id}/calendar:{destination}", business, destination,
             json.dumps(payload)),
        )  # fmt: skip
        queued += cur.rowcount
    return queued


# ---------------------------------------------------------------------------------------------
# retention


@dataclass(frozen=True)
class RetentionPolicy:
    business: str  # as on the rows: the brain's business.name
    retain_days: int | None  # None: kept forever


@dataclass
class SweepResult:
    ran: bool  # False: another sweeper was at work, or the fleet's sweep already ran today
    why_not: str = ""
    cutoffs: dict[str, datetime] = field(default_factory=dict)
    counts: dict[str, Counts] = field(default_factory=dict)  # business -> counts


def _retention_steps(business: str, cutoff: datetime) -> list[_Step]:
    old_calls = (
        "call_id IN (SELECT id FROM calls WHERE business = %s AND started_at < %s"
        " AND personal_erased_at IS NULL)"
    )
    by_call = (business, cutoff)
    return [
        _Step("transcript_turns", old_calls, by_call),
        _Step("tool_calls", old_calls, by_call),
        _Step("violations", old_calls, by_call),
        _Step("leads", "business = %s AND created_at < %s", by_call),
        _Step("messages", "business = %s AND created_at < %s", by_call),
        _Step(
            "appointments",
            "business = %s AND upper(during) < %s AND (customer_phone IS NOT NULL OR customer_name IS NOT NULL)",
            by_call,
            _STRIP_APPOINTMENT,
        ),
        # what was sent or is still queued (the digest too): it names callers, numbers and words; one
        # still pending this late has been failing for the whole retention and goes with the rest. A
        # booking's calendar rows stay while the booking keeps its caller (a visit booked long ahead):
        # they say which event of the owner's calendar to strip when the booking is
        _Step(
            "outbox",
            "business = %s AND created_at < %s AND NOT (channel = 'calendar' AND payload->>'appointment_id'"
            " IN (SELECT id::text FROM appointments WHERE customer_phone IS NOT NULL OR customer_name IS NOT NULL))",
            by_call,
        ),
        _Step("calls", "business = %s AND started_at < %s AND personal_erased_at IS NULL", by_call, _STRIP_CALL),
    ]


def _audio_past(business: str, cutoff: datetime) -> Audio:
    """A business's audio past its retention: calls by their start, messages by when they were left."""
    return {"recordings": ("business = %s AND started_at < %s", (business, cutoff)),
            "voicemails": ("business = %s AND created_at < %s", (business, cutoff))}  # fmt: skip


async def sweep(
    dsn: str, policies: list[RetentionPolicy], *, dry_run: bool = False, now: datetime | None = None,
    audio: AudioStore | None = None,
) -> SweepResult:
    """Strip what each business keeps past its retention; at most one real run a day for the fleet.

    A dry run takes no lock and writes nothing: it counts what a run now would touch.
    """
    now = now or datetime.now(UTC)
    conn = await _connect(dsn)
    try:
        cutoffs = {p.business: now - timedelta(days=p.retain_days) for p in policies if p.retain_days is not None}
        if not dry_run:
            for business, cutoff in cutoffs.items():
                await _require_reachable(conn, audio, _audio_past(business, cutoff))
            got = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (_RETENTION_LOCK,))).fetchone()
            if not (got and got[0]):
                return SweepResult(ran=False, why_not="another retention sweep is running")
            day = now.astimezone(UTC).date()
            if not await _claim_day(conn, day):
                return SweepResult(ran=False, why_not=f"already ran today ({day}, UTC)")
        result = SweepResult(ran=True)
        for business, cutoff in cutoffs.items():
            result.cutoffs[business] = cutoff
            past = _audio_past(business, cutoff)
            synced = await _synced_events(
                conn,
                "a.business = %s AND upper(a.during) < %s"
                " AND (a.customer_phone IS NOT NULL OR a.customer_name IS NOT NULL)",
                (business, cutoff),
            )
            # the voice before its message row, which the steps delete
            voicemails = await _erase_audio(conn, "voicemails", *past["voicemails"], dry_run, audio)
            counts = await _apply(conn, _retention_steps(business, cutoff), dry_run)
            counts["voicemails"] = voicemails
            if synced:
                queued = len(synced) if dry_run else await _queue_calendar_updates(conn, synced)
                counts["outbox"]["queued"] = queued
            counts["recordings"] = await _erase_audio(conn, "recordings", *past["recordings"], dry_run, audio)
            result.counts[business] = counts
        if not dry_run:
            await conn.execute(
                "UPDATE retention_runs SET finished_at = now(), counts = %s WHERE day = %s",
                (json.dumps(result.counts), day),
            )
        return result
    finally:
        await conn.close()  # also releases the advisory lock


async def _claim_day(conn: psycopg.AsyncConnection[Any], day: date) -> bool:
    """Record that today's sweep starts; False if today's already finished (a run that died midway
    leaves finished_at empty, and is run again)."""
    cur = await conn.execute(
        "INSERT INTO retention_runs (day) VALUES (%s) ON CONFLICT (day) DO UPDATE"
        " SET started_at = now() WHERE retention_runs.finished_at IS NULL RETURNING day",
        (day,),
    )
    return await cur.fetchone() is not None


# ---------------------------------------------------------------------------------------------
# erasure


@dataclass(frozen=True)
class CancelledBooking:
    business: str
    service: str
    start: datetime
    confirmation_code: str


@dataclass
class ErasureResult:
    audit_id: int
    number_masked: str
    counts: Counts
    cancelled: list[CancelledBooking]


def written_forms(e164: str) -> str:
    """A Postgres regular expression for the number as it is written in free text: E.164, with or
    without the country code or a trunk 0, digits grouped by spaces, dots, dashes or brackets
    ('+15035550111', '(503) 555-0111', '503.555.0111'), never inside a longer run of digits."""
    parsed = phonenumbers.parse(e164, None)
    gap = "[ ().-]{0,2}"
    country = gap.join(str(parsed.country_code))
    national = gap.join(str(parsed.national_number))
    return rf"(^|[^0-9])(\+?{country}{gap}|0{gap})?{national}([^0-9]|$)"


def _erasure_steps(e164: str) -> list[_Step]:
    their_calls = "call_id IN (SELECT id FROM calls WHERE caller_number = %s)"
    other_calls = "call_id NOT IN (SELECT id FROM calls WHERE caller_number = %s)"
    written = written_forms(e164)
    return [
        _Step("transcript_turns", their_calls, (e164,)),
        # another caller who said this number (booking for someone else, a callback number)
        _Step("transcript_turns", f"{other_calls} AND text ~ %s", (e164, written)),
        _Step("tool_calls", their_calls, (e164,)),
        _Step(
            "tool_calls",
            f"{other_calls} AND (arguments::text || ' ' || coalesce(result, '') || ' '"
            " || coalesce(error, '')) ~ %s",
            (e164, written),
        ),
        _Step("violations", their_calls, (e164,)),
        _Step("leads", f"{their_calls} OR phone = %s", (e164, e164)),
        _Step("messages", f"{their_calls} OR phone = %s", (e164, e164)),
        # what is left of their bookings once the future ones are cancelled (see forget)
        _Step("appointments", "customer_phone = %s", (e164,), _STRIP_APPOINTMENT),
        # notifications about their calls, texts to them, and any other (a digest, an owner's alert
        # about someone else's call) that names the number; a pending one is never sent
        _Step(
            "outbox",
            "call_id IN (SELECT id FROM calls WHERE caller_number = %s) OR destination = %s"
            " OR (payload::text) ~ %s"
            # a daily digest over a time they called: it lists their message (with another callback
            # number), their lead and their flagged call, without the number the request names
            " OR (kind = 'digest' AND EXISTS (SELECT 1 FROM calls c WHERE c.caller_number = %s"
            " AND c.business = outbox.business"
            " AND c.started_at >= (outbox.payload #>> '{detail,from}')::timestamptz"
            " AND c.started_at < (outbox.payload #>> '{detail,to}')::timestamptz))",
            (e164, e164, written, e164),
        ),
        _Step("calls", "caller_number = %s", (e164,), _STRIP_CALL),
        # another caller's call whose report holds this number: as the callback number, or retold
        # in the prose summary, the hand-off's summary or the briefing the person heard (each of which
        # then retells the rest of that call too)
        _Step(
            "calls",
            "summary #>> '{message,callback_number}' = %s OR summary #>> '{prose,text}' ~ %s"
            " OR summary #>> '{escalation,summary}' ~ %s OR summary #>> '{escalation,briefing}' ~ %s",
            (e164, written, written, written),
            "summary = " + _stripped(tuple(p for p in _REPORT_PERSONAL if p != "{lead,answers}")),
        ),
    ]


async def forget(dsn: str, e164: str, requested_by: str, audio: AudioStore | None = None) -> ErasureResult:
    """Erase one phone number's personal data everywhere, then write the audit row (also when
    nothing was left to erase, so every request is on record).

    A booking of theirs that has not yet ended is cancelled: without a name or a number nobody can
    confirm, move or be called about it, and the slot goes back to other callers. The result lists
    those bookings so the business can be told.
    """
    conn = await _connect(dsn)
    try:
        written = written_forms(e164)
        spoken = (
            "caller_number = %s OR id IN (SELECT call_id FROM transcript_turns WHERE text ~ %s)"
            " OR id IN (SELECT call_id FROM tool_calls WHERE (arguments::text || ' ' || coalesce(result, '')) ~ %s)"
        )
        # their calls, and another caller's call that said or booked under the number (the audio cannot
        # be cut like a transcript, so the whole recording goes), and voicemails left on those calls or
        # from their number (a voice cannot be cut either)
        theirs: Audio = {
            "recordings": (spoken, (e164, written, written)),
            "voicemails": (f"call_id IN (SELECT id FROM calls WHERE {spoken}) OR phone = %s", (e164, written, written, e164)),
        }  # fmt: skip
        await _require_reachable(conn, audio, theirs)
        synced = await _synced_events(conn, "a.customer_phone = %s", (e164,))
        cur = await conn.execute(
            "UPDATE appointments SET status = 'cancelled', updated_at = now(), " + _STRIP_APPOINTMENT
            + " WHERE customer_phone = %s AND status = 'booked' AND upper(during) > now()"
            " RETURNING business, service, lower(during), confirmation_code",
            (e164,),
        )
        cancelled = [CancelledBooking(*row) for row in await cur.fetchall()]
        # before the words and the message rows naming them go
        recordings = await _erase_audio(conn, "recordings", *theirs["recordings"], False, audio)
        voicemails = await _erase_audio(conn, "voicemails", *theirs["voicemails"], False, audio)
        counts = await _apply(conn, _erasure_steps(e164), dry_run=False)
        counts["recordings"], counts["voicemails"] = recordings, voicemails
        # after the outbox step, which deletes the rows about their calls (the old calendar rows too)
        if synced:
            counts["outbox"]["queued"] = await _queue_calendar_updates(conn, synced)
        if cancelled:
            counts["appointments"]["cancelled"] = len(cancelled)
        masked = mask_numbers(e164)
        row = await (
            await conn.execute(
                "INSERT INTO erasures (requested_by, number_masked, counts) VALUES (%s, %s, %s) RETURNING id",
                (requested_by, masked, json.dumps(counts)),
            )
        ).fetchone()
        assert row is not None
        return ErasureResult(audit_id=int(row[0]), number_masked=masked, counts=counts, cancelled=cancelled)
    finally:
        await conn.close()


def format_counts(counts: Counts) -> list[str]:
    """One line per table, e.g. 'transcript_turns: 12 deleted'; a table untouched says 0."""
    lines = []
    for table in TABLES:
        done = counts.get(table) or {}
        parts = [f"{n} {action}" for action, n in done.items() if n] or ["0"]
        lines.append(f"{table}: {', '.join(parts)}")
    return lines
