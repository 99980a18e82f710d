"""The outbox rows a booking change asks for: the owner's CalDAV calendar brought up to date. Written
by the booking tools through the call's journal, delivered by the calendar channel (caldav_sync.py),
which this module does not import, so the call path does not load a CalDAV client."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from agent.store.journal.events import NotificationQueued

if TYPE_CHECKING:
    from agent.brain.schema.brain import Brain
    from agent.call import CallContext
    from agent.store.appointments import Appointment

PAYLOAD_VERSION = 1
CalendarChange = Literal["booked", "moved", "cancelled"]


def event_change(call: CallContext, change: CalendarChange, appointment: Appointment) -> NotificationQueued | None:
    """The outbox row that brings the owner's calendar up to date after a call's `change`; None for a
    business without a CalDAV calendar."""
    return _row(call.brain, change, appointment, cause=str(call.call_id), call_id=call.call_id,
                at=call.clock())  # fmt: skip


def owner_change(brain: Brain, change: CalendarChange, appointment: Appointment, *, at: datetime) -> NotificationQueued | None:
    """The same row after the owner changed a booking in the console (no call behind it)."""
    return _row(brain, change, appointment, cause="owner", call_id=None, at=at)


def _row(brain: Brain, change: CalendarChange, appointment: Appointment, *, cause: str,
         call_id: uuid.UUID | None, at: datetime) -> NotificationQueued | None:  # fmt: skip
    dav = brain.calendar.caldav
    if dav is None:
        return None
    business = brain.business.name
    payload = {
        "version": PAYLOAD_VERSION, "kind": f"calendar_{change}", "business": business,
        "appointment_id": str(appointment.id), "confirmation_code": appointment.confirmation_code,
        "summary": f"{appointment.service} {change} ({appointment.start.isoformat()})",
    }  # fmt: skip
    # each change makes or ends an appointment row of its own, so its id keeps the key unique
    return NotificationQueued(
        key=f"{cause}/calendar_{change}/{appointment.id}/calendar:{dav.url}", business=business,
        kind=f"calendar_{change}", channel="calendar", destination=dav.url, payload=payload,
        call_id=call_id, created_at=at,
    )  # fmt: skip
