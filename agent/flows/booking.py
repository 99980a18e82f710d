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
from agent.flows.task import FlowTask, StepGate, flow_instructions, run_flow
from agent.tools import booking_tools, common_tools
from agent.tools.audit import receptionist_tool
from agent.tools.booking import caller_phone
from agent.tools.spoken import clean_text, region_of, say_number

BOOKING_STEPS = """# Now: booking an appointment
You are booking an appointment with the caller, step by step; a tool called before its step is refused.
1. Settle the service (only the services listed above) and the day; call check_availability and offer two or three of its times.
2. When the caller picks a time, call hold_slot at once.
3. Ask for their full name and the number for the appointment (the one they call from, unless they give another). Call read_back_details, say the name and number back as it returns them, and ask whether that is right.
4. Only once the caller says yes, call book_appointment with that time, name and number. Then tell them the day and time and spell the confirmation code.
If the caller no longer wants to book, or wants something else, call leave_booking."""


@dataclass(frozen=True)
class BookingResult:
    booking: dict[str, Any] | None = None  # book_appointment's output, when booked
    left: str | None = None  # why the caller left the booking, when not

    def for_model(self) -> str:
        if self.booking is not None:
            return json.dumps(
                {
                    "booked": True,
                    "done": "The booking is made and its code was read out. Ask if there is anything else.",
                }
            )
        return json.dumps(
            {"booked": False, "why": self.left, "next": "Carry on with what the caller wants now."}
        )


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
            self.held = json.loads(result)["held"]
            self._reach(BookingStep.SLOT_HELD)
        elif tool == "read_back_details":
            self.read_back = ReadBack(
                **json.loads(result)["confirm"], caller_turns=self.call.caller_turns
            )
            self._reach(BookingStep.READ_BACK)
        elif tool == "book_appointment":
            self._reach(BookingStep.BOOKED)
            self.task.finish(BookingResult(booking=json.loads(result)))
        elif tool == "leave_booking":
            self._reach(BookingStep.LEFT)
            self.task.finish(BookingResult(left=str(arguments.get("reason", ""))))


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
    call = context.userdata
    name = clean_text(customer_name, 500)
    if len(name) < 2 or not any(ch.isalpha() for ch in name):
        raise ToolError("I need the caller's name for the booking: ask for it.")
    if len(name) > 120:
        raise ToolError(
            "That name is too long to be a person's name: ask for the caller's full name."
        )
    e164 = caller_phone(call, phone or None)
    return json.dumps({
        "confirm": {"name": name, "phone": e164},
        "say": f"{name}, at {say_number(e164, region_of(call.brain.business.phone))}",
        "then": "Ask whether that is right; book only after they say yes.",
    })  # fmt: skip


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
async def start_booking(context: RunContext[CallContext]) -> str:
    """Start booking an appointment, as soon as the caller wants one (before checking times)."""
    task = BookingTask(context.userdata, chat_ctx=context.session.current_agent.chat_ctx)
    result = await run_flow(
        task, ended=BookingResult(left="the call ended before the booking was made")
    )
    return result.for_model()


class BookingTask(FlowTask[BookingResult]):
    """The booking: the tools every step of the call keeps (facts, a message, a person, goodbye) and
    the booking's own."""

    def __init__(self, call: CallContext, chat_ctx: llm.ChatContext) -> None:
        super().__init__(
            call, chat_ctx, steps=BOOKING_STEPS, tools=task_tools(call.brain), gate=BookingGate,
            go_on="Go on with the booking from where the caller is.",
        )  # fmt: skip
