"""The outbox rows a booking change asks for: the owner's CalDAV calendar brought up to date. Written
by the booking tools through the call's journal, delivered by the calendar channel (caldav_sync.py),
which this module does not import, so the call path does not load a CalDAV client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from agent.store.journal import NotificationQueued

if TYPE_CHECKING:
    from agent.call import CallContext
    from agent.store.appointments import Appointment

PAYLOAD_VERSION = 1
CalendarChange = Literal["booked", "moved", "cancelled"]


def event_change(call: CallContext, change: CalendarChange, appointment: Appointment) -> NotificationQueued | None:
    """The outbox row that brings the owner's calendar up to date after `change`; None for a business
    without a CalDAV calendar."""
    dav = call.brain.calendar.caldav
    if dav is None:
        return None
    business = call.brain.business.name
    payload = {
        "version": PAYLOAD_VERSION, "kind": f"calendar_{change}", "business": business,
        "appointment_id": str(appointment.id), "confirmation_code": appointment.confirmation_code,
        "summary": f"{appointment.service} {change} ({appointment.start.isoformat()})",
    }  # fmt: skip
    return NotificationQueued(
        key=f"{call.call_id}/calendar_{change}/{appointment.id}/calendar:{dav.url}", business=business,
        kind=f"calendar_{change}", channel="calendar", destination=dav.url, payload=payload,
        call_id=call.call_id, created_at=call.clock(),
    )  # fmt: skip
