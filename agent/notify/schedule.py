"""When the owner hears, by each business's own clock: the daily digest, queued by the senders once its
local time has passed (once per business and day across the fleet, by its outbox key), and quiet hours,
during which non-urgent email and SMS to the owner wait for the morning."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from psycopg_pool import AsyncConnectionPool

from agent.brain import Brain
from agent.brain.schema.notify import URGENT_KINDS
from agent.notify.caller_texts import CALLER_KINDS
from agent.notify.digest import build_digest, digest_notifications
from agent.store.outbox import Notification, existing_keys, queue

log = logging.getLogger("receptionist.notify")

# a digest that could not be built (a bug, a bad row) is tried again this much later, not every round
RETRY_AFTER = timedelta(minutes=1)
# how long a call's records (its report, its prose summary) may take to land after its time limit
SETTLE = timedelta(minutes=5)


def _local(day: date, at: time, brain: Brain) -> datetime:
    return datetime.combine(day, at, brain.tz)


def digest_day(brain: Brain, now: datetime) -> date | None:
    """The local day whose digest is due at `now`: today once its digest time has passed."""
    at = brain.notify.digest_at
    if at is None:
        return None
    local = now.astimezone(brain.tz)
    return local.date() if local.time() >= at else None


def quiet_until(brain: Brain, now: datetime) -> datetime | None:
    """The end of the quiet hours `now` falls in, or None outside them."""
    quiet = brain.notify.quiet_hours
    if quiet is None:
        return None
    local = now.astimezone(brain.tz)
    if not quiet.covers(local.time()):
        return None
    end = _local(local.date(), quiet.end, brain)
    return end if end > local else _local(local.date() + timedelta(days=1), quiet.end, brain)


class OwnerSchedule:
    """The brains' digest times and quiet hours, as one sender applies them each round."""

    def __init__(self, brains: Sequence[Brain]) -> None:
        self._brains = {b.business.name: b for b in brains}
        # (business, day) this process knows is in the outbox, or when to try building it again
        self._queued: set[tuple[str, date]] = set()
        self._not_before: dict[tuple[str, date], datetime] = {}

    def held_until(self, row: Notification, now: datetime) -> datetime | None:
        """When a due row may go, if quiet hours hold it now. Urgent kinds wake the owner; a text to a
        caller answers what they just did; a webhook or the calendar reaches a system, not a sleeper."""
        brain = self._brains.get(row.business)
        if brain is None or row.channel in ("webhook", "calendar") or row.kind in URGENT_KINDS or row.kind in CALLER_KINDS:
            return None
        return quiet_until(brain, now)

    async def queue_digests(self, pool: AsyncConnectionPool, now: datetime) -> int:
        """Queue each business's digest for today once its time has passed; returns rows added. Every
        sender does this each round: the outbox key keeps one per business and day."""
        added = 0
        for brain in self._brains.values():
            day = digest_day(brain, now)
            if day is None or (brain.business.name, day) in self._queued:
                continue
            slot = (brain.business.name, day)
            if self._not_before.get(slot, now) > now:
                continue
            try:
                added += await self._queue_one(pool, brain, day, now)
            except Exception:  # noqa: BLE001 - one business's digest must not stop every delivery
                log.exception("digest for %s on %s could not be built; trying again in %s",
                              brain.business.name, day, RETRY_AFTER)  # fmt: skip
                self._not_before[slot] = now + RETRY_AFTER
                continue
            self._queued.add(slot)
        return added

    async def _queue_one(self, pool: AsyncConnectionPool, brain: Brain, day: date, now: datetime) -> int:
        keys = [n.key for n in digest_notifications(brain, day, {}, now)]
        if not keys:
            return 0  # nobody to send it to
        if set(keys) <= await existing_keys(pool, keys):
            return 0  # queued by another sender, or by this one before a restart
        at = brain.notify.digest_at
        assert at is not None
        # the calls that started in the day up to as long before the digest's time as a call may last
        # (the brain's time limit, and SETTLE for its records): each has ended and its report is in, and
        # a call still going at the digest's time is in the next day's digest, not in neither
        lag = timedelta(minutes=brain.calls.max_duration_minutes) + SETTLE
        start, end = _local(day - timedelta(days=1), at, brain) - lag, _local(day, at, brain) - lag
        payload = await build_digest(pool, brain, start, end)
        added = await queue(pool, digest_notifications(brain, day, payload, now))
        if added:
            log.info("queued the digest of %s for %s (%d rows)", brain.business.name, day, added)
        return added
