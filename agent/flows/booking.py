"""Booking as a LiveKit task: service -> day -> slot held -> name and number read back -> the caller
says yes -> booked. The task offers only the tools booking needs, and its gate refuses a step taken
early, so a booking never happens without a held slot and a number the caller heard and confirmed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from livekit.agents import RunContext, ToolError, llm

from agent.brain import Brain
from agent.call import CallContext
from agent.flows.steps import BookingStep, Flow
from agent.flows.task import (
    FlowTask,
    Opening,
    StepGate,
    flow_instructions,
    left_for_model,
    open_with,
    run_flow,
)
from agent.tools import booking_tools, common_tools
from agent.tools.audit import receptionist_tool
from agent.tools.booking import caller_phone, check_availability, read_back
from agent.tools.spoken import clean_text

BOOKING_STEPS = """# Now: booking an appointment
You are booking an appointment with the caller, step by step; a tool called before its step is refused.
1. Settle the service (only the services listed above) and the day, call check_availability (unless the booking opened with its times) and offer two or three of its times.
2. When the caller picks a time, call hold_slot at once (with their name and number too, if they have given them: it then returns the read-back).
3. Otherwise ask for their full name and the number for the appointment (the one they call from, unless they give another). Call read_back_details, say the name and number back as returned, and ask whether that is right.
4. Only once the caller says yes, call book_appointment with that time, name and number. The booking then ends, and you tell the caller the day and time and spell the confirmation code.
If the caller no longer wants to book, or wants something else, call leave_booking."""


@dataclass(frozen=True)
class BookingResult:
    booking: dict[str, Any] | None = None  # book_appointment's output, when booked
    left: str | None = None  # why the caller left the booking, when not

    def for_model(self) -> str:
        if self.booking is not None:
            return json.dumps({
                **self.booking,
                "done": "Tell the caller the day and time, spell the confirmation code, and ask whether "
                "there is anything else (or go on with anything else they asked).",
            })  # fmt: skip
        return left_for_model("booked", self.left)


@dataclass(frozen=True)
class ReadBack:
    name: str
    phone: str
    caller_turns: int  # the caller's turns so far when it was read back: a yes must come after


class BookingGate(StepGate):
    """Where the booking's order is enforced: a booking needs the slot held, the name and number read
    back, and the caller's answer since."""

    flow = Flow.BOOKING
    started = BookingStep.STARTED
    left_step = BookingStep.LEFT

    def __init__(self, call: CallContext, task: FlowTask[Any]) -> None:
        super().__init__(call, task)
        self.service: str | None = None  # the service as the brain names it
        self.held: str | None = None  # the held start, YYYY-MM-DDTHH:MM
        self.read_back: ReadBack | None = None

    def check(self, tool: str, arguments: dict[str, Any]) -> None:
        if tool == "read_back_details" and self.held is None:
            self._refuse("slot_held", "No time is held yet: offer times from check_availability, and "
                         "call hold_slot when the caller picks one; then read back the name and number.")  # fmt: skip
        if tool != "book_appointment":
            return
        if self.held is None:
            self._refuse("slot_held", "No time is held for this caller yet: offer times from "
                         "check_availability and call hold_slot when they pick one.")  # fmt: skip
        svc = self.call.brain.service(str(arguments.get("service", "")))
        if arguments.get("start") != self.held or svc is None or svc.name != self.service:
            self._refuse("slot_held", f"The time held is {self.service} at {self.held}. Book that one, "
                         "or call hold_slot for the time the caller wants now.")  # fmt: skip
        rb = self.read_back
        if rb is None:
            self._refuse("details_read_back", "Read the caller's name and number back first "
                         "(read_back_details) and wait for them to say it is right.")  # fmt: skip
        if self.call.caller_turns <= rb.caller_turns:
            self._refuse("caller_confirmed", "The caller has not answered the read-back yet: ask "
                         "whether the name and number are right, and wait for their yes.")  # fmt: skip
        name = clean_text(str(arguments.get("customer_name", "")), 500)
        phone = str(arguments.get("phone") or "")
        if name != rb.name or _number(self.call, phone) != rb.phone:
            self._refuse("details_read_back", f"What was read back to the caller is {rb.name} at {rb.phone}. "
                         "To book under other details, read them back with read_back_details and wait for "
                         "the caller's yes.")  # fmt: skip

    def advance(self, tool: str, arguments: dict[str, Any], result: Any) -> None:
        if tool == "check_availability" and self.held is None:
            self._reach(BookingStep.AVAILABILITY)
        elif tool == "hold_slot":
            svc = self.call.brain.service(str(arguments.get("service", "")))
            self.service = svc.name if svc else None
            held = json.loads(result)
            self.held = held["held"]
            self._reach(BookingStep.SLOT_HELD)
            if "confirm" in held:  # the caller's name and number came with the time
                self._read_back(held["confirm"])
        elif tool == "read_back_details":
            self._read_back(json.loads(result)["confirm"])
        elif tool == "book_appointment":
            self._reach(BookingStep.BOOKED)
            self.task.finish(BookingResult(booking=json.loads(result)))
        elif tool == "leave_booking":
            self._reach(BookingStep.LEFT)
            self.task.finish(BookingResult(left=str(arguments.get("reason", ""))))

    def _read_back(self, confirm: dict[str, str]) -> None:
        self.read_back = ReadBack(**confirm, caller_turns=self.call.caller_turns)
        self._reach(BookingStep.READ_BACK)


def _number(call: CallContext, phone: str) -> str:
    try:
        return caller_phone(call, phone or None)
    except ToolError:
        return ""


@receptionist_tool
async def read_back_details(
    context: RunContext[CallContext], customer_name: str, phone: str = ""
) -> str:
    """Check the caller's name and the number for the appointment, and get them to read back. Say
    them back to the caller and ask whether they are right.

    Args:
        customer_name: The caller's full name.
        phone: The number as the caller said it; leave empty for the number they are calling from.
    """
    return json.dumps(read_back(context.userdata, customer_name, phone))


@receptionist_tool
async def leave_booking(context: RunContext[CallContext], reason: str) -> str:
    """The caller no longer wants to book now, or wants something else first.

    Args:
        reason: In a few words, why.
    """
    return json.dumps({"left": True})


def booking_instructions(brain: Brain) -> str:
    return flow_instructions(brain, BOOKING_STEPS)


def task_tools(brain: Brain) -> list[Any]:
    return [*common_tools(brain), *booking_tools(), read_back_details, leave_booking]


@receptionist_tool(answers=False)
async def start_booking(
    context: RunContext[CallContext], service: str = "", day: str = ""
) -> str:
    """Start booking an appointment, as soon as the caller wants one (before checking times). Pass
    the service and the day when the caller has said them: the booking then opens with that day's
    free times, as check_availability gives them.

    Args:
        service: The service the caller wants, in their words, if they said it; else leave empty.
        day: The day they want (YYYY-MM-DD, a weekday name, "today" or "tomorrow"), if they said it.
    """
    chat_ctx = context.session.current_agent.chat_ctx.copy()
    opening = None
    if service.strip() and day.strip():
        opening = await open_with(context, chat_ctx, check_availability, service=service, day=day)
    task = BookingTask(context.userdata, chat_ctx=chat_ctx, opening=opening)
    result = await run_flow(
        task, ended=BookingResult(left="the call ended before the booking was made")
    )
    return result.for_model()


class BookingTask(FlowTask[BookingResult]):
    """The booking: the tools every step of the call keeps (facts, a message, a person, goodbye) and
    the booking's own."""

    def __init__(
        self, call: CallContext, chat_ctx: llm.ChatContext, opening: Opening | None = None
    ) -> None:
        super().__init__(
            call, chat_ctx, steps=BOOKING_STEPS, tools=task_tools(call.brain), gate=BookingGate,
            go_on="Go on with the booking from where the caller is.", opening=opening,
        )  # fmt: skip
