"""What one call knows about itself: the business's brain, the caller, the clock and the stores.

Every tool reaches these through `RunContext[CallContext].userdata`, so the model never owns a fact.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from agent.call_cost import CallUsage

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

    from agent.brain import Brain
    from agent.flows.steps import FlowGate, FlowStepLog
    from agent.live import LiveState
    from agent.playout_gate import PlayoutGate
    from agent.recording import CallRecording
    from agent.settings import PriceTable
    from agent.store.journal.writer import CallJournal

# the end reason of a call the caller hung up before anything of ours ended it (the report's
# hung_up_during_greeting flag and the owner's figures count it)
CALLER_HANGUP = "caller_hangup"


class TransferFailed(Exception):
    """The far end refused or never answered the transfer."""


class CallerLeft(Exception):
    """The caller hung up while being transferred (on hold, as the person was called)."""


class PhoneLine(Protocol):
    """The caller's leg of the call: LiveKit SIP in production, a simulated line in scenarios."""

    async def hang_up(self, reason: str) -> None: ...

    async def transfer(self, destination: str) -> None:
        """Hands the caller over; raises TransferFailed when nobody takes them, CallerLeft when the
        caller hangs up first."""
        ...


log = logging.getLogger("receptionist.call")


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class TurnLog:
    seq: int
    role: str  # "caller" | "agent"
    text: str
    started_at: float  # unix seconds
    ended_at: float
    interrupted: bool


@dataclass
class ToolCallLog:
    seq: int
    name: str
    arguments: dict[str, Any]
    result: str | None
    error: str | None
    latency_ms: float


@dataclass
class CallContext:
    brain: Brain
    call_id: uuid.UUID = field(default_factory=uuid.uuid4)
    room: str = ""
    caller_number: str | None = None  # E.164 from the SIP attributes; None in console/text runs
    dialed_number: str | None = None
    sip_call_id: str | None = None  # LiveKit SIP call id (SCL_...)
    twilio_call_sid: str | None = None
    # the carrier's STIR/SHAKEN verdict on the caller ID (Twilio's X-Twilio-VerStat), when it sent one
    caller_verstat: str | None = None
    clock: Callable[[], datetime] = system_clock  # pinned in scenarios
    journal: CallJournal | None = None
    pool: AsyncConnectionPool | None = None
    live: LiveState | None = None
    line: PhoneLine | None = None
    # set by tools as the call goes on; the highest-ranked one wins when the call row is finalised
    outcome: str | None = None
    end_reason: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    # what happened, in order, kept in memory for reports; the journal makes it durable
    transcript: list[TurnLog] = field(default_factory=list)
    tool_log: list[ToolCallLog] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    flow_steps: list[FlowStepLog] = field(default_factory=list)  # agent/flows/steps.py
    # how many times the caller has begun a turn (spoken, or typed in a text run): a flow asks for
    # the caller's answer between reading something back and acting on it
    caller_turns: int = 0
    # the flow under way (a booking, an appointment change): every tool call passes its gate
    flow: FlowGate | None = None
    finished: bool = False
    # wall-clock seconds (not the pinned clock): the report's timings compare them with turn times
    started_wall: float | None = None
    ended_wall: float | None = None
    report: dict[str, Any] | None = None
    # the Realtime model's usage, response by response, and the prices the report costs it at
    usage: CallUsage = field(default_factory=CallUsage)
    prices: PriceTable | None = None
    # what the line must do once the agent's current sentence has been heard
    # the goodbye is being said: the line hangs up (for this reason) once it has been heard (CallKeeper)
    hang_up_after_reply: str | None = None
    # what the caller has proven on this call, beyond the caller ID (see has_proven)
    proven_numbers: set[str] = field(default_factory=set)
    # confirmation codes and numbers that did not match a booking: a guesser is stopped after a few
    failed_proofs: int = 0
    # the call's audio recording, when its brain records calls (agent/recording.py)
    recording: CallRecording | None = None
    # set once the caller's leg is up (SIP "active"); the greeting waits for it, so it is never lost
    line_ready: asyncio.Event = field(default_factory=asyncio.Event)
    # the grounding guard's ear on the agent's transcript as it streams, ahead of the audio: called
    # as watch_sentences calls it: each time a sentence of the current message is complete or gains a
    # word, with the gate on that message's audio (set by the CallKeeper)
    on_agent_sentence: Callable[[list[str], str, float, PlayoutGate | None], None] | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.brain.business.timezone)

    def now(self) -> datetime:
        """The business's local time, aware."""
        return self.clock().astimezone(self.tz)

    @property
    def caller_id_trusted(self) -> bool:
        """Whether the caller ID may stand for the caller: present, and not failed by STIR/SHAKEN.

        Caller ID proves less than it seems (anyone can set it on a SIP trunk), but it is what every
        phone service trusts to say "your appointment on Tuesday". A carrier that checked the call's
        signature and found it forged (TN-Validation-Failed) turns it back into a mere claim.
        """
        return self.caller_number is not None and not (self.caller_verstat or "").startswith(
            "TN-Validation-Failed"
        )

    def has_proven(self, number: str) -> bool:
        """A phone number the caller may read bookings under: a trusted caller ID, or one they proved
        on this call. A number they merely state proves nothing."""
        return (
            number == self.caller_number and self.caller_id_trusted
        ) or number in self.proven_numbers

    def set_outcome(self, outcome: str) -> None:
        # escalation and bookings outrank a mere message or lead; never downgrade
        rank = {
            "error": 0, "abandoned": 1, "answered": 2, "message": 3, "lead": 4, "booked": 5, "escalated": 6,
        }  # fmt: skip
        if self.outcome is None or rank.get(outcome, 0) >= rank.get(self.outcome, 0):
            self.outcome = outcome

    # -- the record of the call: memory for reports, the journal for durability -------------------
    def _journal(self, event: Any) -> None:
        if self.journal is not None:
            self.journal.record(event)

    def start(self, *, started_at: datetime | None = None) -> None:
        from agent.store.journal import events as j

        self.started_wall = time.time()
        self._journal(
            j.CallStarted(
                call_id=self.call_id,
                business=self.brain.business.name,
                room=self.room,
                sip_call_id=self.sip_call_id,
                twilio_call_sid=self.twilio_call_sid,
                caller_number=self.caller_number,
                caller_verstat=self.caller_verstat,
                dialed_number=self.dialed_number,
                started_at=started_at or self.clock(),
            )
        )

    def answered(self) -> None:
        from agent.store.journal import events as j

        self._journal(j.CallAnswered(call_id=self.call_id, answered_at=self.clock()))

    def record_turn(
        self, *, role: str, text: str, started_at: float, ended_at: float, interrupted: bool
    ) -> int:
        from agent.store.journal import events as j

        seq = len(self.transcript) + 1
        self.transcript.append(TurnLog(seq, role, text, started_at, ended_at, interrupted))
        self._journal(
            j.TranscriptTurn(
                call_id=self.call_id,
                seq=seq,
                role=role,
                text=text,
                started_at=datetime.fromtimestamp(started_at, UTC),
                ended_at=datetime.fromtimestamp(ended_at, UTC),
                interrupted=interrupted,
            )
        )
        return seq

    def record_tool_call(
        self,
        *,
        name: str,
        arguments: dict[str, Any],
        result: str | None,
        error: str | None,
        latency_ms: float,
    ) -> None:
        from agent.store.journal import events as j

        seq = len(self.tool_log) + 1
        self.tool_log.append(ToolCallLog(seq, name, arguments, result, error, latency_ms))
        self._journal(
            j.ToolCallRecord(
                call_id=self.call_id,
                seq=seq,
                name=name,
                arguments=arguments,
                result=result,
                error=error,
                latency_ms=latency_ms,
            )
        )

    def record_violation(
        self, *, turn_seq: int, kind: str, claim: str, correction: str, heard: bool = True
    ) -> None:
        """`heard`: whether the caller heard any of the claim (False: stopped before it played)."""
        from agent.store.journal import events as j

        self.violations.append(
            {"turn_seq": turn_seq, "kind": kind, "claim": claim, "correction": correction,
             "heard": heard}
        )  # fmt: skip
        self._journal(
            j.Violation(
                call_id=self.call_id,
                turn_seq=turn_seq,
                kind=kind,
                claim=claim,
                correction=correction,
            )
        )

    def record(self, event: Any) -> None:
        """Any other durable record of this call (lead, message): through the journal, in order."""
        self._journal(event)
