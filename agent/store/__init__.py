"""Postgres: schema migrations, the call journal (call records) and appointments (caller-facing)."""

from agent.store.appointments import (
    Appointment,
    AppointmentNotFound,
    NotYourAppointment,
    SlotTaken,
    book,
    busy_intervals,
    cancel,
    find_for_caller,
    reschedule,
)
from agent.store.db import StoreUnavailable, migrate, open_pool
from agent.store.journal.events import (
    CallAnswered,
    CallEnded,
    CallStarted,
    LeadRecord,
    MessageRecord,
    ToolCallRecord,
    TranscriptTurn,
    Violation,
)
from agent.store.journal.writer import CallJournal
from agent.store.records import snapshot

__all__ = [
    "Appointment",
    "AppointmentNotFound",
    "CallAnswered",
    "CallEnded",
    "CallJournal",
    "CallStarted",
    "LeadRecord",
    "MessageRecord",
    "NotYourAppointment",
    "SlotTaken",
    "StoreUnavailable",
    "ToolCallRecord",
    "TranscriptTurn",
    "Violation",
    "book",
    "busy_intervals",
    "cancel",
    "find_for_caller",
    "migrate",
    "open_pool",
    "reschedule",
    "snapshot",
]
