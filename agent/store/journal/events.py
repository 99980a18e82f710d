"""What the call journal records: one frozen dataclass per kind of call record (the call's start,
answer and end, transcript turns, tool calls, leads, messages, grounding violations, the summary, the
recording, notifications queued). Each event carries its idempotency key: the call id for call rows,
(call_id, seq) for turns and tool calls, its own uuid for leads, messages and violations."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _new_id() -> uuid.UUID:
    return uuid.uuid4()


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
    audio_path: str | None = None  # a voicemail: the caller's voice, on the worker's disk
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
class FlowStep:
    """A step one of the call's flows reached (agent/flows/steps.py), or a tool it refused as out of
    step (`refused` says what was missing)."""

    type: ClassVar[str] = "flow_step"
    call_id: uuid.UUID
    seq: int
    flow: str
    step: str
    refused: str | None = None
    at: datetime = field(default_factory=_utcnow)
    id: uuid.UUID = field(default_factory=_new_id)


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
    | Violation | CallEnded | CallSummarised | RecordingSaved | NotificationQueued | FlowStep
)  # fmt: skip
EVENT_TYPES: dict[str, type[Any]] = {
    cls.type: cls
    for cls in (CallStarted, CallAnswered, TranscriptTurn, ToolCallRecord, LeadRecord,
                MessageRecord, Violation, CallEnded, CallSummarised, RecordingSaved, NotificationQueued,
                FlowStep)
}  # fmt: skip
