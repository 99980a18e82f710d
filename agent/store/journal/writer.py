"""CallJournal, the only writer of call records (call rows, transcript turns, tool calls, leads,
messages, violations): their order, buffer and spill; `postgres_writes` runs the batches in Postgres.
`record()` only enqueues, so the audio path never waits on Postgres; a background task writes batches
in order and rides out outages through a durable spill file: while Postgres is down every event
reaches the file within one flush interval, so a process that ends then loses nothing.

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
import logging
import os
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

from agent.store.journal.encoding import decode_event, encode_event
from agent.store.journal.events import CallEnded, Event, ToolCallRecord, TranscriptTurn
from agent.store.journal.postgres_writes import PostgresWrites
from agent.store.journal.spill_file import SpillFile, set_aside_path, spill_files

log = logging.getLogger(__name__)


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
        self._spill_dir = Path(spill_dir)
        self._max_buffer = max_buffer
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_backoff = max_backoff

        self.name = f"journal-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._spill = SpillFile(self._spill_dir / f"{self.name}.jsonl")
        self._orphans: list[SpillFile] = []
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
        self._postgres = PostgresWrites(
            target, set_aside_path(self._spill_dir, self.name), self._stats,
            connect_timeout=connect_timeout, write_timeout=write_timeout,
        )  # fmt: skip

    # --- public API ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Claim spill files left by crashed journals and start the background writer."""
        self._spill_dir.mkdir(parents=True, exist_ok=True)
        for path in spill_files(self._spill_dir):
            orphan = SpillFile.claim(path)
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
        await self._postgres.close()
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
        late = SpillFile(path)
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
                await self._postgres.close()
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
                    await self._postgres.write_batch(events)
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
                    await self._postgres.write_batch(events)
                    self._written_upto = max(self._written_upto, events[-1][0])
                self._spill.offset = end
            if self._spill.offset >= self._spill.size:
                await self._in_thread(self._spill.reset_if_consumed)
            return True

        # nothing awaited since the checks above, so no spill can have started: memory is next in order
        batch = [item for item, _ in zip(self._pending, range(self._batch_size), strict=False)]
        if not batch:
            return False
        await self._postgres.write_batch(batch)
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
                self._postgres.set_aside([line])
        return events

    def _release_files(self) -> None:
        self._spill.close(keep_after=self._written_upto)
        for orphan in self._orphans:
            orphan.close()
        self._orphans.clear()


async def replay_spill(
    target: str | AsyncConnectionPool,
    spill_dir: str | Path,
    timeout: float = 60.0,  # noqa: ASYNC109
) -> int:
    """Write the spill files of processes that have ended into Postgres (a worker's start-up, so an
    idle worker does not sit on them until its next call); returns how many events were replayed.
    Gives up at once while Postgres is down: the files stay for the next journal."""
    if not spill_files(spill_dir):
        return 0
    journal = CallJournal(target, spill_dir)
    try:
        await journal.start()
        await journal.flush(timeout, until_outage=True)
    finally:
        await journal.aclose()  # cancelled too: the files it claimed are released, trimmed to what is left
    return journal.stats()["replayed"]


async def keep_replaying_spill(target: str | AsyncConnectionPool, spill_dir: str | Path, every_s: float) -> None:
    """Every `every_s`, the spill files of ended processes replayed (replay_spill), so a worker with no
    call coming writes what its ended calls left on disk soon after Postgres is back, not at its next
    call. Runs until cancelled; a failed round is logged and the next one tries again."""
    while True:
        await asyncio.sleep(every_s)
        try:
            if not spill_files(spill_dir):
                continue
            replayed = await replay_spill(target, spill_dir, timeout=every_s)
        except Exception:  # noqa: BLE001 - the files stay; the next round tries again
            log.warning("call records on disk not replayed this round", exc_info=True)
            continue
        if replayed:
            log.info("%d call records ended calls left on disk are in Postgres", replayed)
