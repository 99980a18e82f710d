"""Two-way sync with the owner's CalDAV calendar, all of it off the call path.

Out: a booking, move or cancellation is an outbox row (channel `calendar`) journaled by the tool that
made it; the sender's CalendarChannel then writes the booking's *current* state to the calendar: the
event at its latest time, or no event once cancelled. The event's resource is named by its UID, so a
retried or replayed row overwrites the same event and never adds a second one.

In: the CalendarRefresher (run by `receptionist notify run`) reads the owner's own events every
CALDAV_REFRESH_S into `calendar_busy`, which check_availability reads from Postgres. An owner event over
a booking is reported to the owner through the brain's notify channels, once per event and booking.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import caldav
from caldav.lib.error import DAVError
from psycopg_pool import AsyncConnectionPool

from agent.calendar.changes import PAYLOAD_VERSION
from agent.calendar.events import booking_event, calendar_of, event_uid, owner_event
from agent.notify.sender import DeliveryFailed
from agent.store.calendar import (
    Conflict,
    OwnerEvent,
    conflicts,
    event_state,
    refresh_failed,
    replace_owner_events,
)
from agent.store.journal.events import NotificationQueued
from agent.store.outbox import Notification, queue

if TYPE_CHECKING:
    from agent.brain import Brain
    from agent.brain.schema.calendar import CalDav

log = logging.getLogger("receptionist.calendar")

TIMEOUT_S = 15.0


class CalendarConfigError(ValueError):
    """A brain's CalDAV settings cannot be used (its password variable is not set)."""


@dataclass(frozen=True)
class CalDavAccount:
    url: str
    username: str
    password: str

    def calendar(self) -> caldav.Calendar:
        # a client per use: deliveries run on threads side by side, and a session is not shared safely
        client = caldav.DAVClient(url=self.url, username=self.username, password=self.password, timeout=TIMEOUT_S)
        return client.calendar(url=self.url)


def accounts(brains: Sequence[Brain], environ: Mapping[str, str | None]) -> dict[str, CalDavAccount]:
    """Each business's CalDAV account, by business name; raises CalendarConfigError naming the brain's
    field when its password variable is not set (the sender refuses to start rather than fail later)."""
    found = {}
    for brain in brains:
        dav: CalDav | None = brain.calendar.caldav
        if dav is None:
            continue
        password = environ.get(dav.password_env)
        if not password:
            raise CalendarConfigError(
                f"{brain.business.name}: calendar.caldav.password_env: {dav.password_env} is not set"
                " in the environment (it holds the CalDAV password)"
            )
        found[brain.business.name] = CalDavAccount(dav.url, dav.username, password)
    return found


# --- out: bookings to the calendar --------------------------------------------------------------


class CalendarChannel:
    """The outbox's `calendar` channel: writes a booking's current state to the owner's CalDAV calendar."""

    def __init__(self, pool: AsyncConnectionPool, brains: Sequence[Brain], accounts: Mapping[str, CalDavAccount]) -> None:
        self._pool = pool
        self._brains = {b.business.name: b for b in brains}
        self._accounts = dict(accounts)

    async def deliver(self, notification: Notification) -> None:
        account = self._accounts.get(notification.business)
        brain = self._brains.get(notification.business)
        if account is None or brain is None or account.url != notification.destination:
            raise DeliveryFailed(f"{notification.destination} is not the CalDAV calendar of"
                                 f" {notification.business} on this sender")  # fmt: skip
        appointment_id = uuid.UUID(notification.payload["appointment_id"])
        async with self._pool.connection() as conn, conn.transaction():
            first, _ = await event_state(conn, appointment_id)
            # one delivery per booking (all its moves) at a time, across senders: each reads the state
            # after the previous one wrote it, so a late "booked" can never undo a "cancelled"
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('calendar_event:' || %s))", (str(first),))
            first, current = await event_state(conn, appointment_id)
            uid = event_uid(first)
            try:
                if current.status == "booked":
                    ics = calendar_of(brain, [booking_event(brain, current, uid, full=True)]).to_ical().decode()
                    await asyncio.to_thread(_put, account, ics)
                else:
                    await asyncio.to_thread(_delete, account, uid)
            except (DAVError, OSError) as exc:
                raise DeliveryFailed(f"CalDAV {account.url}: {exc or type(exc).__name__}") from exc

    async def aclose(self) -> None:
        pass


def _put(account: CalDavAccount, ics: str) -> None:
    # stored as given (no SEQUENCE bump): the same booking state written twice is the same event
    account.calendar().add_event(ics, increase_seqno=False)


def _delete(account: CalDavAccount, uid: str) -> None:
    calendar = account.calendar()
    # a delete of an event that is not there (never written, or already deleted) is done, not an error
    caldav.Event(calendar.client, url=calendar.url.join(f"{uid}.ics"), parent=calendar).delete()


# --- in: the owner's busy times -----------------------------------------------------------------

CONFLICT_KIND = "calendar_conflict"


def _say(brain: Brain, when: datetime) -> str:
    local = when.astimezone(brain.tz)
    return f"{local:%a %b} {local.day} {local:%H:%M}"


def conflict_notifications(brain: Brain, conflict: Conflict, now: datetime) -> list[NotificationQueued]:
    """The owner's notifications of an event they added over a booking, one per notify channel."""
    notify = brain.notify
    targets = [("email", a) for a in notify.email] + [("sms", n) for n in notify.sms]
    if notify.webhook:
        targets.append(("webhook", notify.webhook))
    a = conflict.appointment
    summary = (
        f"Your calendar event \"{conflict.event_summary or 'busy'}\" ({_say(brain, conflict.event_start)}-"
        f"{conflict.event_end.astimezone(brain.tz):%H:%M}) overlaps {a.customer_name}'s {a.service} booked"
        f" for {_say(brain, a.start)} (code {a.confirmation_code}, {a.customer_phone}). The booking stands:"
        " call them to move it, or move your event."
    )
    business = brain.business
    payload = {
        "version": PAYLOAD_VERSION, "kind": CONFLICT_KIND, "business": business.name,
        "business_number": business.numbers[0] if business.numbers else business.phone, "summary": summary,
        "detail": {"event": conflict.event_summary, "event_start": conflict.event_start.isoformat(),
                   "event_end": conflict.event_end.isoformat(), "service": a.service,
                   "start": a.start.isoformat(), "confirmation_code": a.confirmation_code,
                   "caller_name": a.customer_name, "caller_number": a.customer_phone},
    }  # fmt: skip
    return [
        NotificationQueued(
            key=f"{CONFLICT_KIND}/{business.name}/{conflict.event_uid}/{a.id}/{channel}:{destination}",
            business=business.name, kind=CONFLICT_KIND, channel=channel, destination=destination,
            payload=payload, created_at=now,
        )  # fmt: skip
        for channel, destination in targets
    ]


class CalendarRefresher:
    """Keeps each business's copy of its owner's CalDAV events fresh, and reports owner events that
    land on a booking. A failed refresh leaves the last copy in place and records why; calls then use
    it with a `calendar_stale` flag (check_availability)."""

    def __init__(
        self, pool: AsyncConnectionPool, brains: Sequence[Brain], accounts: Mapping[str, CalDavAccount], *,
        interval_s: float = 30.0, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:  # fmt: skip
        self._pool = pool
        self._brains = [b for b in brains if b.business.name in accounts]
        self._accounts = dict(accounts)
        self.interval_s = interval_s
        self._clock = clock
        self._unreported: set[tuple[str, uuid.UUID]] = set()  # conflicts without a channel, logged once

    async def refresh(self) -> int:
        """One round over every business; returns how many copies were refreshed."""
        refreshed = 0
        for brain in self._brains:
            name = brain.business.name
            try:
                events = await asyncio.to_thread(self._fetch, brain)
            except (DAVError, OSError) as exc:
                error = f"CalDAV {self._accounts[name].url}: {exc or type(exc).__name__}"
                log.warning("calendar of %s not refreshed; calls use the last copy: %s", name, error)
                await refresh_failed(self._pool, name, error)
                continue
            # a copy is stale once three refreshes in a row were missed
            await replace_owner_events(self._pool, name, events, stale_after_s=3 * self.interval_s)
            refreshed += 1
            await self._report_conflicts(brain)
        return refreshed

    def _fetch(self, brain: Brain) -> list[OwnerEvent]:
        now = self._clock()
        start, end = now - timedelta(days=1), now + timedelta(days=brain.booking.max_days_ahead + 2)
        found = self._accounts[brain.business.name].calendar().search(start=start, end=end, event=True, expand=True)
        events = []
        for item in found:
            for component in item.icalendar_instance.walk("VEVENT"):
                ev = owner_event(brain, component)
                if ev is not None:
                    events.append(ev)
        return events

    async def _report_conflicts(self, brain: Brain) -> None:
        name = brain.business.name
        for c in await conflicts(self._pool, name):
            rows = conflict_notifications(brain, c, self._clock())
            if rows:
                # each event and booking once: its key is in the outbox after the first refresh
                if await queue(self._pool, rows):
                    log.warning("%s: the owner's event %r overlaps booking %s; the owner is told",
                                name, c.event_summary, c.appointment.confirmation_code)  # fmt: skip
            elif (c.event_uid, c.appointment.id) not in self._unreported:
                self._unreported.add((c.event_uid, c.appointment.id))
                log.error("%s: the owner's event %r overlaps booking %s, and the brain has no notify channel"
                          " to tell them", name, c.event_summary, c.appointment.confirmation_code)  # fmt: skip

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.refresh()
            except Exception:  # noqa: BLE001 - a bad round (Postgres away) must not end the refresher
                log.exception("calendar refresh round failed")
            try:
                await asyncio.wait_for(stop.wait(), self.interval_s)
            except TimeoutError:
                pass
