"""The outbox sender: claims due notifications, hands each to its channel, records every attempt, and
backs off exponentially (capped) until the target takes it or the attempts run out (then it is dead,
for `receptionist outbox retry`). Run as its own process, any number of replicas:
`receptionist notify run`. Replicas never deliver one notification twice (see agent/store/outbox.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import psycopg
from psycopg_pool import AsyncConnectionPool

from agent.store.db import CONNECTION_ERRORS
from agent.store.outbox import Notification, claim_due

if TYPE_CHECKING:
    from agent.notify.schedule import OwnerSchedule
    from agent.settings import Settings

log = logging.getLogger("receptionist.notify")

# one attempt; the row stays locked meanwhile, so no replica can double it
DELIVERY_TIMEOUT_S = 30.0


class DeliveryFailed(Exception):
    """The target refused the notification or could not be reached; the message is recorded."""


class DeliveryRefused(DeliveryFailed):
    """No attempt can ever succeed (a number that opted out, a landline for a text): the row is dead
    at once, with the reason as its error, instead of being retried for half an hour."""


class Channel(Protocol):
    """One way to reach the owner (agent/notify/channels.py): delivers a row or raises."""

    async def deliver(self, notification: Notification) -> None: ...

    async def aclose(self) -> None: ...


class OutboxSender:
    """One replica's delivery loop."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        channels: Mapping[str, Channel],
        *,
        max_attempts: int = 12,
        backoff_s: float = 5.0,
        backoff_max_s: float = 300.0,
        poll_s: float = 0.5,
        batch_size: int = 20,
        name: str | None = None,
        schedule: OwnerSchedule | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._pool = pool
        # the brains' digest times and quiet hours; none: deliver whatever is due, queue no digest
        self._schedule = schedule
        self._clock = clock  # pinned in tests: the digest's time and quiet hours follow it
        self._channels = dict(channels)
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s
        self._poll_s = poll_s
        self._batch_size = batch_size
        self.name = name or f"sender-{os.getpid()}-{uuid.uuid4().hex[:6]}"

    def backoff(self, failures: int) -> timedelta:
        """The wait after the n-th failed attempt in a row: doubling from backoff_s, capped."""
        return timedelta(seconds=min(self._backoff_s * 2 ** (failures - 1), self._backoff_max_s))

    async def deliver_due(self) -> int:
        """One round: queue the digests whose time has come, then deliver what is due now (up to a
        batch) or hold it for the end of quiet hours; returns how many rows were claimed."""
        now = self._clock()
        if self._schedule is not None:
            await self._schedule.queue_digests(self._pool, now)
        async with claim_due(self._pool, self._batch_size, now) as claim:
            if not claim.rows:
                return 0
            due = []
            for row in claim.rows:
                until = self._schedule.held_until(row, now) if self._schedule is not None else None
                if until is None:
                    due.append(row)
                    continue
                await claim.hold(row, until)
                log.info("notification %s (%s by %s) held by quiet hours until %s",
                         row.id, row.kind, row.channel, until.isoformat())  # fmt: skip
            outcomes = await asyncio.gather(*(self._attempt(row) for row in due))
            for row, (started_at, duration_ms, error, final) in zip(due, outcomes, strict=True):
                if error is None:
                    await claim.delivered(row, sender=self.name, started_at=started_at,
                                          duration_ms=duration_ms)  # fmt: skip
                    continue
                failures = row.attempts + 1
                retry_in = None if final or failures >= self._max_attempts else self.backoff(failures)
                await claim.failed(row, sender=self.name, started_at=started_at,
                                   duration_ms=duration_ms, error=error, retry_in=retry_in)  # fmt: skip
                if final:
                    log.warning("notification %s (%s by %s) cannot be delivered: %s",
                                row.id, row.kind, row.channel, error)  # fmt: skip
                elif retry_in is None:
                    log.error("notification %s (%s by %s) is dead after %d attempts: %s",
                              row.id, row.kind, row.channel, failures, error)  # fmt: skip
                else:
                    log.warning("notification %s (%s by %s) failed, retry in %.0fs: %s",
                                row.id, row.kind, row.channel, retry_in.total_seconds(), error)  # fmt: skip
            return len(claim.rows)

    async def _attempt(self, row: Notification) -> tuple[datetime, float, str | None, bool]:
        """(started, duration in ms, error or None, whether the error is final)."""
        started_at, t0 = datetime.now(UTC), time.perf_counter()
        error: str | None = None
        final = False
        channel = self._channels.get(row.channel)
        try:
            if channel is None:
                raise DeliveryFailed(f"the {row.channel} channel is not configured on this sender")
            async with asyncio.timeout(DELIVERY_TIMEOUT_S):
                await channel.deliver(row)
        except DeliveryRefused as exc:
            error, final = str(exc), True
        except DeliveryFailed as exc:
            error = str(exc)
        except TimeoutError:
            error = f"no answer within {DELIVERY_TIMEOUT_S:.0f}s"
        except Exception as exc:  # noqa: BLE001 - any failure is one failed attempt, recorded
            error = f"{type(exc).__name__}: {exc}"
        return started_at, (time.perf_counter() - t0) * 1000, error, final

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; a Postgres outage only pauses the loop."""
        down_since: float | None = None
        while not stop.is_set():
            try:
                attempted = await self.deliver_due()
            except (*CONNECTION_ERRORS, psycopg.Error) as exc:
                if down_since is None:
                    down_since = time.monotonic()
                    log.warning("outbox sender: cannot reach Postgres (%s); retrying", exc)
                attempted = 0
            else:
                if down_since is not None:
                    log.warning("outbox sender: Postgres is back after %.1fs",
                                time.monotonic() - down_since)  # fmt: skip
                    down_since = None
            if attempted:
                continue  # more may be due right now
            try:
                await asyncio.wait_for(stop.wait(), self._poll_s)
            except TimeoutError:
                pass

    async def aclose(self) -> None:
        for channel in self._channels.values():
            await channel.aclose()


def sender_from_settings(
    settings: Settings, pool: AsyncConnectionPool, channels: Mapping[str, Channel],
    schedule: OwnerSchedule | None = None,
) -> OutboxSender:
    """A sender with the deployment's attempts, backoff and polling (OUTBOX_* settings)."""
    return OutboxSender(
        pool, channels, max_attempts=settings.outbox_max_attempts,
        backoff_s=settings.outbox_backoff_s, backoff_max_s=settings.outbox_backoff_max_s,
        poll_s=settings.outbox_poll_s, schedule=schedule,
    )  # fmt: skip
