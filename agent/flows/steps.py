"""The states of the call's flows, as enums, and how a step is recorded: in memory for the call's
report and through the journal into `call_events`, so the report's funnel shows where callers drop off."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from agent.call import CallContext


class Flow(StrEnum):
    BOOKING = "booking"
    APPOINTMENT = "appointment"  # finding, moving or cancelling a booking the caller owns
    ESCALATION = "escalation"


class BookingStep(StrEnum):
    """service -> day -> slot held -> name and number read back -> confirmed -> booked."""

    STARTED = "started"
    AVAILABILITY = "availability_checked"
    SLOT_HELD = "slot_held"
    READ_BACK = "details_read_back"
    BOOKED = "booked"
    LEFT = "left"  # the caller changed their mind, or wanted something else


class AppointmentStep(StrEnum):
    """found (under proof) -> the caller's yes -> moved or cancelled."""

    STARTED = "started"
    FOUND = "found"
    RESCHEDULED = "rescheduled"
    CANCELLED = "cancelled"
    LEFT = "left"


class EscalationStep(StrEnum):
    """asked -> the hand-off line -> transfer -> accepted or failed -> a message (or none: left); or
    nobody open -> a message."""

    REQUESTED = "requested"
    NOBODY_OPEN = "nobody_open"  # no department takes it now, or the line cannot transfer
    HANDOFF_LINE = (
        "handoff_line"  # the agent says who takes over; the transfer starts once it is heard
    )
    TRANSFERRING = "transferring"
    ACCEPTED = "accepted"
    FAILED = "failed"  # refused, busy or unanswered
    MESSAGE = "message_taken"
    LEFT = "left"  # the transfer failed and the caller wanted no message, or the call ended under way


Step = BookingStep | AppointmentStep | EscalationStep
FLOW_STEPS: dict[Flow, type[StrEnum]] = {
    Flow.BOOKING: BookingStep, Flow.APPOINTMENT: AppointmentStep, Flow.ESCALATION: EscalationStep,
}  # fmt: skip


@dataclass(frozen=True)
class FlowStepLog:
    seq: int
    flow: Flow
    step: str
    refused: str | None
    at: datetime


class FlowGate(Protocol):
    """A flow's hold on the tools while it runs (every tool call passes it: agent/tools/audit.py)."""

    def check(self, tool: str, arguments: dict[str, Any]) -> None:
        """Raise ToolError, saying what must come first, when `tool` is out of step."""

    def advance(self, tool: str, arguments: dict[str, Any], result: Any) -> None:
        """Moves the flow on after `tool` returned `result`; it may end the flow."""

    @property
    def ended(self) -> bool:
        """The flow is over (the tool just passed may have ended it)."""


def record_step(call: CallContext, flow: Flow, step: Step, *, refused: str | None = None) -> None:
    """Note that `flow` reached `step` (or, with `refused`, that a tool was refused before it)."""
    from agent.store.journal import events as j

    at = call.clock()
    seq = len(call.flow_steps) + 1
    call.flow_steps.append(FlowStepLog(seq, flow, str(step), refused, at))
    call.record(
        j.FlowStep(
            call_id=call.call_id, seq=seq, flow=str(flow), step=str(step), refused=refused, at=at
        )
    )


def report(call: CallContext) -> dict[str, Any]:
    """The call report's `flows`: each flow's steps in the order reached, and what was refused as out
    of step (the step the flow was at, and what was missing)."""
    out: dict[str, Any] = {}
    for s in call.flow_steps:
        flow = out.setdefault(str(s.flow), {"steps": [], "refused": []})
        if s.refused is None:
            flow["steps"].append(s.step)
        else:
            flow["refused"].append({"at": s.step, "missing": s.refused})
    return out


def last_run(call: CallContext, flow: Flow) -> list[str]:
    """The steps `flow` reached since it last started (a caller may ask for a person twice)."""
    first = str(next(iter(FLOW_STEPS[flow])))
    steps = [s.step for s in call.flow_steps if s.flow == flow and s.refused is None]
    starts = [i for i, step in enumerate(steps) if step == first]
    return steps[starts[-1] :] if starts else steps
