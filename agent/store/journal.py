"""The call journal: the only writer of call records (call rows, transcript turns, tool calls, leads,
messages, violations). `record()` only enqueues, so the audio path never waits on Postgres; a background
task writes batches in order and rides out outages through a durable spill file: while Postgres is
down every event reaches the file within one flush interval, so a process that ends then loses nothing.

Ordering: every event gets a journal sequence number n. Events live in three places, oldest first:
the spill file (overflow, fsync'd), spill writes still in flight, and the in-memory buffer. The writer
always drains them in that order, and only marks events written (by n) after their transaction commits,
so an event that was both written and spilled is skipped on the way back. Replays after a crash may
repeat events that had landed; every row has an idempotency key, so those inserts do nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import fcntl
import json
import logging
import os
import typing
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _new_id() -> uuid.UUID:
    return uuid.uuid4()


# --- events -----------------------------------------------------------------------------------------
# Each event carries its idempotency key: the call id for call rows, (call_id, seq) for turns and tool
# calls, its own uuid for leads, messages and violations.


@dataclass(frozen=True, kw_only=True)
class CallStarted:
    type: ClassVar[str] = "call_started"
    call_id: uuid.UUID
    business: str
    started_at: datetime = field(default_factory=_utcnow)
    room: str | None = None
    sip_call_id: str | None = None
    twilio_call_sid: str | None = None
    caller_number: str | None = None
    caller_verstat: str | None = None
    dialed_number: str | None = None


@dataclass(frozen=True, kw_only=True)
class CallAnswered:
    type: ClassVar[str] = "call_answered"
    call_id: uuid.UUID
    answered_at: datetime = field(default_factory=_utcnow)


@dataclass(frozen=True, kw_only=True)
class TranscriptTurn:
    type: ClassVar[str] = "turn"
    call_id: uuid.UUID
    role: Literal["agent", "caller"]
    text: str
    started_at: datetime = field(default_factory=_utcnow)
    ended_at: datetime | None = None
    interrupted: bool = False
    seq: int | None = None  # assigned by the journal (1, 2, ... per call) when left out
    id: uuid.UUID = field(default_factory=_new_id)


@dataclass(frozen=True, kw_only=True)
class ToolCallRecord:
    type: ClassVar[str] = "tool_call"
    call_id: uuid.UUID
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    result: str | None = None
    error: str | None = None
    latency_ms: float | None = None
    created_at: datetime = field(default_factory=_utcnow)
    seq: int | None = None  # assigned by the journal when left out
    id: uuid.UUID = field(default_factory=_new_id)


@dataclass(frozen=True, kw_only=True)
class LeadRecord:
    type: ClassVar[str] = "lead"
    call_id: uuid.UUID | None
    business: str
    score: int
    name: str | None = None
    phone: str | None = None
    need: str | None = None
    urgency: str | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=_utcnow)
    id: uuid.UUID = field(default_factory=_new_id)


@dataclass(frozen=True, kw_only=True)
class MessageRecord:
    type: ClassVar[str] = "message"
    call_id: uuid.UUID | None
    business: str
    body: str
    caller_name: str | None = None
    phone: str | None = None
    callback_requested: bool = False
    urgency: str | None = None
    created_at: datetime = field(default_factory=_utcnow)
    id: uuid.UUID = field(default_factory=_new_id)


@dataclass(frozen=True, kw_only=True)
class Violation:
    """A claim the agent made that the brain file or the store contradicts."""

    type: ClassVar[str] = "violation"
    call_id: uuid.UUID
    kind: str
    claim: str
    correction: str | None = None
    turn_seq: int | None = None
    created_at: datetime = field(default_factory=_utcnow)
    id: uuid.UUID = field(default_factory=_new_id)


@dataclass(frozen=True, kw_only=True)
class CallEnded:
    type: ClassVar[str] = "call_ended"
    call_id: uuid.UUID
    outcome: str | None = None
    end_reason: str | None = None
    summary: dict[str, Any] | None = None
    ended_at: datetime = field(default_factory=_utcnow)


@dataclass(frozen=True, kw_only=True)
class CallSummarised:
    """The report's prose summary, added once the call has ended (agent/call_summary.py)."""

    type: ClassVar[str] = "call_summarised"
    call_id: uuid.UUID
    prose: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class RecordingSaved:
    """The call's audio recording, kept (agent/recording.py): where it is and how long it runs."""

    type: ClassVar[str] = "recording_saved"
    call_id: uuid.UUID
    path: str
    seconds: float


@dataclass(frozen=True, kw_only=True)
class NotificationQueued:
    """A notification for the outbox (agent/store/outbox.py); `key` is its idempotency key."""

    type: ClassVar[str] = "notification"
    key: str
    business: str
    kind: str
    channel: str
    destination: str
    payload: dict[str, Any] = field(default_factory=dict)
    call_id: uuid.UUID | None = None
    created_at: datetime = field(default_factory=_utcnow)


Event = (
    CallStarted | CallAnswered | TranscriptTurn | ToolCallRecord | LeadRecord | MessageRecord
    | Violation | CallEnded | CallSummarised | RecordingSaved | NotificationQueued
)  # fmt: skip
EVENT_TYPES: dict[str, type[Any]] = {
    cls.type: cls
    for cls in (CallStarted, CallAnswered, TranscriptTurn, ToolCallRecord, LeadRecord,
                MessageRecord, Violation, CallEnded, CallSummarised, RecordingSaved, NotificationQueued)
}  # fmt: skip


# --- spill-file encoding ----------------------------------------------------------------------------


def _field_parser(hint: Any) -> Callable[[Any], Any] | None:
    kinds = typing.get_args(hint) or (hint,)
    if datetime in kinds:
        return lambda v: None if v is None else datetime.fromisoformat(v)
    if uuid.UUID in kinds:
        return lambda v: None if v is None else uuid.UUID(v)
    return None


_PARSERS: dict[str, dict[str, Callable[[Any], Any]]] = {}
for _name, _cls in EVENT_TYPES.items():
    _hints = typing.get_type_hints(_cls)
    _PARSERS[_name] = {
        f.name: p
        for f in dataclasses.fields(_cls)
        if (p := _field_parser(_hints[f.name])) is not None
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)  # uuids; anything odd in tool arguments is kept as text rather than lost


def encode_event(n: int, event: Event) -> bytes:
    body = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    line = {"n": n, "type": event.type, "event": body}
    return json.dumps(line, default=_json_default, separators=(",", ":")).encode() + b"\n"


def decode_event(line: bytes) -> tuple[int, Event]:
    raw = json.loads(line)
    kind = raw["type"]
    body = raw["event"]
    for name, parse in _PARSERS[kind].items():
        if name in body:
            body[name] = parse(body[name])
    return raw["n"], EVENT_TYPES[kind](**body)


# --- SQL per event type -----------------------------------------------------------------------------

# the Postgres NOTIFY channel on which a call's ending is announced: {"business": ..., "ended_at": ...}
CALL_ENDED_CHANNEL = "call_ended"

_SQL: dict[str, tuple[str, Callable[[Any], Sequence[Any]]]] = {
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
        " callback_requested, urgency, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        lambda e: (e.id, e.call_id, e.business, e.caller_name, e.phone, e.body,
                   e.callback_requested, e.urgency, e.created_at),
    ),
    "violation": (
        "INSERT INTO violations (id, call_id, turn_seq, kind, claim, correction, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        lambda e: (e.id, e.call_id, e.turn_seq, e.kind, e.claim, e.correction, e.created_at),
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
    return json.dumps(value, default=_json_default)


# errors that belong to one event (bad data, missing call row) rather than to the database's health
_POISON_ERRORS = (psycopg.IntegrityError, psycopg.DataError)


class _SpillFile:
    """An append-only, fsync'd JSON-lines file, flock'ed while its journal lives (so a journal starting
    up replays only files whose owner is gone). Methods run on the journal's single spill thread."""

    def __init__(self, path: Path, fd: int | None = None) -> None:
        self.path = path
        self.fd = fd
        self.size = os.fstat(fd).st_size if fd is not None else 0
        self.offset = 0  # bytes already committed to Postgres
        self.refusing = False

    @classmethod
    def claim(cls, path: Path) -> _SpillFile | None:
        """Lock a spill file left behind by a dead journal; None if its owner still lives."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_ino != os.stat(path).st_ino:  # replaced or removed meanwhile
                raise FileNotFoundError(path)
        except (BlockingIOError, FileNotFoundError):
            os.close(fd)
            return None
        return cls(path, fd)

    def append(self, data: bytes) -> None:
        if self.fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
            os.fsync(self.fd)
        except OSError:
            os.ftruncate(self.fd, self.size)  # no torn line for the next append to run into
            raise
        self.size += len(data)

    def append_events(self, items: list[tuple[int, Event]]) -> None:
        # after a failed append, later ones fail too until the journal has taken the events back,
        # so the file never holds events newer than ones that went back to memory
        if self.refusing:
            raise OSError("an earlier spill write failed")
        try:
            self.append(b"".join(encode_event(n, e) for n, e in items))
        except OSError:
            self.refusing = True
            raise

    def read(self, offset: int, max_lines: int) -> tuple[list[bytes], int]:
        """Up to max_lines complete lines from offset, and the offset after them."""
        if self.size <= offset:
            return [], offset
        lines: list[bytes] = []
        with open(self.path, "rb") as f:
            f.seek(offset)
            while len(lines) < max_lines:
                line = f.readline()
                if not line.endswith(b"\n"):
                    break  # end of file, or a line torn by a crash mid-write
                lines.append(line)
                offset += len(line)
        return lines, offset

    @property
    def torn_tail(self) -> bool:
        return self.size > self.offset

    def reset_if_consumed(self) -> bool:
        if self.fd is not None and self.size == self.offset:
            os.ftruncate(self.fd, 0)
            self.size = self.offset = 0
            return True
        return False

    def close(self, keep_after: int | None = None) -> None:
        """Release the file: delete it when fully consumed, otherwise keep only the unconsumed lines
        (those with n > keep_after, when given) for the next journal to replay."""
        if self.fd is None:
            return
        if self.size > self.offset:
            lines, _ = self.read(self.offset, 1 << 62)
            if keep_after is not None:
                lines = [ln for ln in lines if _line_n(ln) > keep_after]
        else:
            lines = []
        if lines:
            if self.offset > 0 or keep_after is not None:
                tmp = self.path.with_suffix(".tmp")
                with open(tmp, "wb") as f:
                    f.writelines(lines)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
        else:
            self.path.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = None


def _line_n(line: bytes) -> int:
    try:
        return int(json.loads(line)["n"])
    except (ValueError, KeyError, TypeError):
        return 1 << 62  # unreadable: keep it, never lose it


class CallJournal:
    """Batched, ordered, outage-proof writer of call records; one per worker process."""

    def __init__(
        self,
        target: str | AsyncConnectionPool,
        spill_dir: str | Path,
        *,
        max_buffer: int = 5000,
        batch_size: int = 500,
        flush_interval: float = 0.05,
        connect_timeout: int = 2,
        write_timeout: float = 10.0,
        max_backoff: float = 2.0,
    ) -> None:
        self._target = target
        self._spill_dir = Path(spill_dir)
        self._max_buffer = max_buffer
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._connect_timeout = connect_timeout
        self._write_timeout = write_timeout
        self._max_backoff = max_backoff

        self.name = f"journal-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._spill = _SpillFile(self._spill_dir / f"{self.name}.jsonl")
        self._orphans: list[_SpillFile] = []
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=self.name)
        # spill writes in flight, with their events in case the disk refuses them
        self._spill_writes: list[
            tuple[concurrent.futures.Future[None], list[tuple[int, Event]]]
        ] = []

        self._pending: deque[tuple[int, Event]] = deque()
        self._next_n = 1
        self._written_upto = 0  # highest n committed to Postgres
        self._turn_seq: dict[uuid.UUID, int] = {}
        self._tool_seq: dict[uuid.UUID, int] = {}

        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._spill_soon: asyncio.TimerHandle | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._outage_since: float | None = None
        self._stats = dict.fromkeys(
            ("recorded", "written", "batches", "spilled", "replayed", "rejected", "outages",
             "retries"), 0,
        )  # fmt: skip

    # --- public API ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Claim spill files left by crashed journals and start the background writer."""
        self._spill_dir.mkdir(parents=True, exist_ok=True)
        for path in spill_files(self._spill_dir):
            orphan = _SpillFile.claim(path)
            if orphan is not None:
                log.info("replaying %s (%d bytes) left by an earlier process", path, orphan.size)
                self._orphans.append(orphan)
        self._task = asyncio.create_task(self._run(), name=self.name)

    def record(self, event: Event) -> Event:
        """Enqueue an event; never waits. Returns it with its seq filled in (turns, tool calls).

        Call from the event loop's thread.
        """
        event = self._assign_seq(event)
        self._stats["recorded"] += 1
        if self._closed:
            self._record_after_close(event)
            return event
        self._pending.append((self._next_n, event))
        self._next_n += 1
        if len(self._pending) >= self._max_buffer:
            self._spill_pending()
        elif self._outage_since is not None and self._spill_soon is None:
            # Postgres is down and the process may end before it is back (a hang-up, Ctrl-C, a
            # job's shutdown deadline, a kill): the buffer goes to disk within one flush interval
            self._spill_soon = asyncio.get_running_loop().call_later(
                self._flush_interval, self._spill_pending
            )
        self._wake.set()
        return event

    def stats(self) -> dict[str, int]:
        return {
            **self._stats,
            "pending": len(self._pending),
            "spill_bytes": self._spill.size - self._spill.offset,
        }

    async def flush(self, timeout: float | None = None, *, until_outage: bool = False) -> bool:  # noqa: ASYNC109
        """Wait until everything recorded so far is in Postgres; False on timeout (or, with
        until_outage, as soon as Postgres is found down)."""
        target = self._next_n - 1
        try:
            async with asyncio.timeout(timeout):
                while self._written_upto < target or self._orphans:
                    if until_outage and self._outage_since is not None:
                        return False
                    self._wake.set()
                    await asyncio.sleep(0.01)
        except TimeoutError:
            return False
        return True

    async def aclose(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Write what can be written within timeout; everything else stays in the spill file.

        During an outage nothing is waited for: the records go to the spill file at once, for the
        next journal (the next call, or the next start) to replay once Postgres is back."""
        if self._closed:
            return
        self._closing = True
        self._wake.set()
        if self._outage_since is not None:
            timeout = 0
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._closed = True
        self._spill_pending()  # also cancels a spill still scheduled
        await self._settle_spill_writes()
        left = self._spill.size - self._spill.offset
        await asyncio.get_running_loop().run_in_executor(self._thread, self._release_files)
        self._thread.shutdown(wait=True)
        await self._close_conn()
        if left:
            log.warning("journal closed with unwritten events kept in %s", self._spill.path)

    # --- record() helpers (synchronous, on the caller's path) ----------------------------------------
    def _assign_seq(self, event: Event) -> Event:
        if isinstance(event, TranscriptTurn | ToolCallRecord):
            counters = self._turn_seq if isinstance(event, TranscriptTurn) else self._tool_seq
            if event.seq is None:
                seq = counters.get(event.call_id, 0) + 1
                event = dataclasses.replace(event, seq=seq)
            counters[event.call_id] = max(counters.get(event.call_id, 0), event.seq or 0)
        elif isinstance(event, CallEnded):
            self._turn_seq.pop(event.call_id, None)
            self._tool_seq.pop(event.call_id, None)
        return event

    def _spill_pending(self) -> None:
        """Move the whole memory buffer (the oldest unspilled events) to the spill file, off-thread."""
        if self._spill_soon is not None:
            self._spill_soon.cancel()
            self._spill_soon = None
        items = [(n, e) for n, e in self._pending if n > self._written_upto]
        self._pending.clear()
        if not items:
            return
        # encoding happens on the spill thread too: thousands of events are too many for the audio loop
        future = self._thread.submit(self._spill.append_events, items)
        self._spill_writes.append((future, items))
        self._stats["spilled"] += len(items)

    def _record_after_close(self, event: Event) -> None:
        # a late event (e.g. from a call's teardown) still must not be lost: leave it for the next run
        path = self._spill_dir / f"{self.name}-late.jsonl"
        late = _SpillFile(path)
        late.append(encode_event(0, event))
        assert late.fd is not None
        os.close(late.fd)
        self._stats["spilled"] += 1
        log.warning("event recorded after the journal closed; kept in %s", path)

    # --- background writer --------------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = 0.05
        while True:
            self._wake.clear()
            try:
                progressed = await self._write_some()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: keep the events, retry later
                self._note_outage(exc)
                self._spill_pending()  # durable now, whenever and however this process ends
                await self._close_conn()
                self._stats["retries"] += 1
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            if self._outage_since is not None:
                down = asyncio.get_running_loop().time() - self._outage_since
                log.warning("call journal: Postgres is back after %.1fs; catching up", down)
                self._outage_since = None
            backoff = 0.05
            if progressed:
                continue
            if self._closing:
                return
            await self._wake.wait()
            if len(self._pending) < self._batch_size and not self._closing:
                await asyncio.sleep(self._flush_interval)  # let a batch gather

    def _note_outage(self, exc: BaseException) -> None:
        if self._outage_since is None:
            self._outage_since = asyncio.get_running_loop().time()
            self._stats["outages"] += 1
            log.warning(
                "call journal: cannot write to Postgres (%s); buffering, spilling to %s",
                exc, self._spill_dir,
            )  # fmt: skip

    async def _settle_spill_writes(self) -> None:
        """Wait for spill writes in flight; events of failed writes go back to the memory buffer."""
        while self._spill_writes:
            await asyncio.wait([asyncio.wrap_future(f) for f, _ in self._spill_writes])
            # no await from here on: the list and the buffer change together
            taken_back: list[tuple[int, Event]] = []
            while self._spill_writes and self._spill_writes[0][0].done():
                future, items = self._spill_writes.pop(0)
                if (exc := future.exception()) is not None:
                    if not taken_back:
                        log.error("call journal: cannot spill events (%s); keeping them in memory",
                                  exc)  # fmt: skip
                    taken_back += items
            if taken_back:
                # they are older than everything in memory and newer than everything in the file
                self._pending.extendleft(reversed(taken_back))
                self._stats["spilled"] -= len(taken_back)
            if not self._spill_writes:
                self._spill.refusing = (
                    False  # nothing in flight: the next spill may try the disk again
                )

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def _write_some(self) -> bool:
        """Write one batch from the oldest source that has events; False when there is nothing."""
        if self._orphans:
            orphan = self._orphans[0]
            lines, end = await self._in_thread(orphan.read, orphan.offset, self._batch_size)
            if lines:
                events = self._decode_lines(lines)
                if events:
                    await self._write_batch(events)
                    self._stats["replayed"] += len(events)
                orphan.offset = end
            else:
                if orphan.torn_tail:
                    log.warning("dropping a torn last line in %s", orphan.path)
                    orphan.offset = orphan.size
                await self._in_thread(orphan.close)
                self._orphans.pop(0)
            return True

        # spilled events are older than anything still in memory
        if self._spill_writes or self._spill.size > self._spill.offset:
            await self._settle_spill_writes()
            lines, end = await self._in_thread(
                self._spill.read, self._spill.offset, self._batch_size
            )
            if lines:
                events = [(n, e) for n, e in self._decode_lines(lines) if n > self._written_upto]
                if events:
                    await self._write_batch(events)
                    self._written_upto = max(self._written_upto, events[-1][0])
                self._spill.offset = end
            if self._spill.offset >= self._spill.size:
                await self._in_thread(self._spill.reset_if_consumed)
            return True

        # nothing awaited since the checks above, so no spill can have started: memory is next in order
        batch = [item for item, _ in zip(self._pending, range(self._batch_size), strict=False)]
        if not batch:
            return False
        await self._write_batch(batch)
        self._written_upto = max(self._written_upto, batch[-1][0])
        while self._pending and self._pending[0][0] <= self._written_upto:
            self._pending.popleft()
        return True

    def _decode_lines(self, lines: list[bytes]) -> list[tuple[int, Event]]:
        events = []
        for line in lines:
            try:
                events.append(decode_event(line))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("unreadable journal line kept aside (%s): %r", exc, line[:200])
                self._reject_lines([line])
        return events

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if isinstance(self._target, AsyncConnectionPool):
            async with self._target.connection(timeout=float(self._connect_timeout)) as conn:
                yield conn
            return
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self._target,
                autocommit=True,
                connect_timeout=self._connect_timeout,
                application_name="receptionist-journal",
                tcp_user_timeout=5000,
                prepare_threshold=None,  # may be PgBouncer in transaction mode (store/db.py open_pool)
            )
        yield self._conn

    async def _close_conn(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                await conn.close()
            except Exception:  # noqa: BLE001 - it is already broken; we only want it gone
                pass

    async def _write_batch(self, events: list[tuple[int, Event]]) -> None:
        """One transaction for the whole batch; a batch refused for its data is retried event by
        event so only the bad events are set aside."""
        async with asyncio.timeout(self._write_timeout), self._connection() as conn:
            try:
                async with conn.transaction():
                    await self._apply(conn, [e for _, e in events])
            except _POISON_ERRORS:
                await self._write_one_by_one(conn, events)
        self._stats["written"] += len(events)
        self._stats["batches"] += 1

    async def _write_one_by_one(
        self, conn: psycopg.AsyncConnection[Any], events: list[tuple[int, Event]]
    ) -> None:
        rejected: list[tuple[int, Event, BaseException]] = []
        async with conn.transaction():
            for n, event in events:
                try:
                    async with conn.transaction():
                        await self._apply(conn, [event])
                except _POISON_ERRORS as exc:
                    rejected.append((n, event, exc))
        for _, event, exc in rejected:
            log.error("call journal: %s event for call %s refused: %s", event.type,
                      getattr(event, "call_id", None), exc)  # fmt: skip
        self._reject_lines([encode_event(n, e) for n, e, _ in rejected])

    def _reject_lines(self, lines: list[bytes]) -> None:
        # set aside, never dropped: an operator can fix and replay them
        if not lines:
            return
        self._stats["rejected"] += len(lines)
        path = self._spill_dir / f"rejected-{self.name}.jsonl"
        self._spill_dir.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as f:
            f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())

    @staticmethod
    async def _apply(conn: psycopg.AsyncConnection[Any], events: list[Event]) -> None:
        # consecutive events of one type go in one executemany (pipelined); order is preserved
        async with conn.cursor() as cur:
            start = 0
            while start < len(events):
                kind = events[start].type
                end = start
                while end < len(events) and events[end].type == kind:
                    end += 1
                sql, params = _SQL[kind]
                await cur.executemany(sql, [params(e) for e in events[start:end]])
                start = end

    def _release_files(self) -> None:
        self._spill.close(keep_after=self._written_upto)
        for orphan in self._orphans:
            orphan.close()
        self._orphans.clear()


async def end_lost_call(
    conn: psycopg.AsyncConnection[Any], call_id: uuid.UUID, *, end_reason: str, ended_at: datetime
) -> bool | None:
    """Finalise a call whose process died before its own ending (outcome `error`): True if this
    ended it, False if it had ended already, None while its row is not in Postgres yet (its records
    may still be in a spill file)."""
    event = CallEnded(call_id=call_id, outcome="error", end_reason=end_reason, ended_at=ended_at)
    sql, params = _SQL[event.type]
    async with conn.transaction():
        cur = await conn.execute(sql, params(event))
        if cur.rowcount:
            return True
        cur = await conn.execute("SELECT 1 FROM calls WHERE id = %s", (call_id,))
        found = await cur.fetchone()
    return False if found else None


def spill_files(spill_dir: str | Path) -> list[Path]:
    """The journals' spill files in spill_dir, oldest first (live ones included: they are locked)."""
    return sorted(Path(spill_dir).glob("journal-*.jsonl"), key=lambda p: p.stat().st_mtime)


async def replay_spill(
    target: str | AsyncConnectionPool, spill_dir: str | Path, timeout: float = 60.0  # noqa: ASYNC109
) -> int:
    """Write the spill files of processes that have ended into Postgres (a worker's start-up, so an
    idle worker does not sit on them until its next call); returns how many events were replayed.
    Gives up at once while Postgres is down: the files stay for the next journal."""
    if not spill_files(spill_dir):
        return 0
    journal = CallJournal(target, spill_dir)
    await journal.start()
    await journal.flush(timeout, until_outage=True)
    await journal.aclose()
    return journal.stats()["replayed"]
