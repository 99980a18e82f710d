"""Bookings as iCalendar events, and the owner's events read back as busy times. One event per booking
across its moves (its UID is the first booking's id), the same in the feed and in CalDAV.

What an event says depends on where it goes. The CalDAV calendar is the owner's own account, behind
their password: the event has the caller's full name, number and confirmation code. The ICS feed is read
by whoever holds its URL (Google or Apple fetch it, and it is easily forwarded): the event has the
service, the time, the caller's first name and last initial, and the number's last 4 digits, enough to
recognise the booking; never the code, which with the number lets someone move or cancel it by phone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from icalendar import Calendar, Event

from agent.store.calendar import OwnerEvent

if TYPE_CHECKING:
    from agent.brain import Brain
    from agent.store.appointments import Appointment

UID_DOMAIN = "@receptionist"  # what marks our events in the owner's calendar: not busy times of theirs
PRODID = "-//receptionist//bookings//EN"


def event_uid(first_booking: uuid.UUID) -> str:
    return f"{first_booking}{UID_DOMAIN}"


def is_ours(uid: str) -> bool:
    return uid.endswith(UID_DOMAIN)


def caller_initials(name: str | None) -> str:
    """'Rosa Diaz' -> 'Rosa D.': recognisable to the owner, not a full identity in a shared URL."""
    words = (name or "").split()
    if not words:
        return "a caller"
    return words[0] if len(words) == 1 else f"{words[0]} {words[-1][0]}."


def booking_event(brain: Brain, appointment: Appointment, uid: str, *, full: bool) -> Event:
    """The event for a booking; `full` for the owner's authenticated CalDAV calendar, else for the feed."""
    ev = Event()
    ev.add("uid", uid)
    ev.add("dtstamp", appointment.updated_at.astimezone(UTC))
    ev.add("last-modified", appointment.updated_at.astimezone(UTC))
    ev.add("dtstart", appointment.start.astimezone(UTC))
    ev.add("dtend", appointment.end.astimezone(UTC))
    ev.add("location", brain.business.address)
    ev.add("status", "CONFIRMED")
    if full:
        # retention or an erasure strips the name and number: the event keeps what the booking kept
        caller = ", ".join(x for x in (appointment.customer_name, appointment.customer_phone) if x)
        caller = caller or "The caller's details were erased."
        ev.add("summary", f"{appointment.service}: {appointment.customer_name or 'a caller'}")
        ev.add("description", (
            f"{caller}\n"
            f"Confirmation code {appointment.confirmation_code}\n"
            "Booked by phone with the AI receptionist."
        ))  # fmt: skip
    else:
        who = caller_initials(appointment.customer_name)
        # retention empties a past booking's name and number: the event then says only what is left
        phone = f", phone ending {appointment.customer_phone[-4:]}" if appointment.customer_phone else ""
        ev.add("summary", f"{appointment.service}: {who}")
        ev.add("description", (
            f"{who}{phone}\n"
            "Booked by phone with the AI receptionist; the full name, number and code are in the console."
        ))  # fmt: skip
    return ev


def calendar_of(brain: Brain, events: Iterable[Event]) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", f"{brain.business.name} bookings")
    cal.add("x-wr-timezone", brain.business.timezone)
    # how often subscribers should fetch again (Outlook, Apple; Google picks its own pace)
    cal.add("refresh-interval", timedelta(minutes=15), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT15M")
    for ev in events:
        cal.add_component(ev)
    return cal


def feed(brain: Brain, bookings: Iterable[tuple[uuid.UUID, Appointment]]) -> bytes:
    """The ICS feed: (first booking's id, current booking) pairs as feed events."""
    return calendar_of(brain, (booking_event(brain, a, event_uid(root), full=False) for root, a in bookings)).to_ical()


def _aware(value: date | datetime, brain: Brain) -> datetime:
    """An iCalendar time as an aware datetime: a date is the business's local midnight, a floating
    time (no zone) is the business's wall clock."""
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=brain.tz)
    return value if value.tzinfo is not None else value.replace(tzinfo=brain.tz)


def owner_event(brain: Brain, component: Any) -> OwnerEvent | None:
    """An owner's VEVENT (one occurrence) as a busy interval; None when it blocks nothing: one of ours,
    cancelled, marked free (TRANSP:TRANSPARENT), or without a start."""
    uid = str(component.get("uid", ""))
    if not uid or is_ours(uid):
        return None
    if str(component.get("status", "")).upper() == "CANCELLED":
        return None
    if str(component.get("transp", "")).upper() == "TRANSPARENT":
        return None
    dtstart = component.get("dtstart")
    if dtstart is None:
        return None
    start = _aware(dtstart.dt, brain)
    if component.get("dtend") is not None:
        end = _aware(component["dtend"].dt, brain)
    elif component.get("duration") is not None:
        end = start + component["duration"].dt
    else:
        # RFC 5545: a date lasts the day, a date-time without an end is an instant
        end = start + timedelta(days=1) if not isinstance(dtstart.dt, datetime) else start
    if end <= start:
        return None
    # the start makes each occurrence of a recurring event its own row, and an event the owner moves a
    # new one (a new overlap with a booking is worth a new word to the owner)
    key = f"{uid}/{start.astimezone(UTC).isoformat()}"
    return OwnerEvent(uid=key, start=start, end=end, summary=str(component.get("summary", "")))
