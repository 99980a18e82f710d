"""Booking as a LiveKit task: service -> day -> slot held -> name and number read back -> the caller
says yes -> booked. The task offers only the tools booking needs, and its gate refuses a step taken
early, so a booking never happens without a held slot and a number the caller heard and confirmed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from livekit.agents import AgentTask, RunContext, ToolError, llm

from agent.brain import Brain, render_instructions
from agent.call import CallContext
from agent.flows.steps import BookingStep, Flow, record_step
from agent.playout_guard import GuardedVoice
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


class BookingGate:
    """Where the booking's order is enforced: every tool call of the call passes `check` while the
    booking runs, and `advance` moves it on."""

    def __init__(self, call: CallContext, task: BookingTask) -> None:
        self.call = call
        self.task = task
        self.service: str | None = None  # the service as the brain names it
        self.held: str | None = None  # the held start, YYYY-MM-DDTHH:MM
        self.read_back: ReadBack | None = None
        self.step = BookingStep.STARTED

    def _reach(self, step: BookingStep) -> None:
        if step != self.step:
            self.step = step
            record_step(self.call, Flow.BOOKING, step)

    def _refuse(self, missing: str, say: str) -> None:
        record_step(self.call, Flow.BOOKING, self.step, refused=missing)
        raise ToolError(say)

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
        assert rb is not None
        if self.call.caller_turns <= rb.caller_turns:
            self._refuse("caller_confirmed", "The caller has not answered the read-back yet: ask "
                         "whether the name and number are right, and wait for their yes.")  # fmt: skip
        name = clean_text(str(arguments.get("customer_name", "")), 500)
        phone = str(arguments.get("phone") or "")
        if name != rb.name or _number(self.call, phone) != rb.phone:
            self._refuse("details_read_back", f"What was read back to the caller is {rb.name} at {rb.phone}. "
                         "To book under other details, read them back with read_back_details and wait for "
                         "the caller's yes.")  # fmt: skip

    def left(self) -> None:
        if self.call.flow is self:
            self.call.flow = None
        self._reach(BookingStep.LEFT)

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
    """The receptionist's instructions, byte for byte, then the booking's steps: what the model is
    sent changes only at its end when the booking starts, so the cached prefix still holds."""
    return render_instructions(brain) + "\n" + BOOKING_STEPS + "\n"


def task_tools(brain: Brain) -> list[Any]:
    return [*common_tools(brain), *booking_tools(), read_back_details, leave_booking]


@receptionist_tool(answers=False)
async def start_booking(context: RunContext[CallContext]) -> str:
    """Start booking an appointment, as soon as the caller wants one (before checking times)."""
    call = context.userdata
    task = BookingTask(call, chat_ctx=context.session.current_agent.chat_ctx)
    try:
        result = await task
    except ToolError:
        # LiveKit cancels a task whose session closes: the caller hung up mid-booking, a drop-off
        task.gate.left()
        result = BookingResult(left="the call ended before the booking was made")
    return result.for_model()


class BookingTask(GuardedVoice, AgentTask[BookingResult]):
    """The booking, with the tools every step of the call keeps (facts, a message, a person, goodbye)
    and the booking's own. Its instructions are the receptionist's plus the steps, so the prompt's
    prefix stays the same for the model's cache."""

    def __init__(self, call: CallContext, chat_ctx: llm.ChatContext) -> None:
        super().__init__(
            instructions=booking_instructions(call.brain),
            chat_ctx=chat_ctx,
            tools=task_tools(call.brain),
            # the booking's tool calls stay in the model's conversation when the receptionist takes the
            # call back (LiveKit deletes them by default): it still knows the code and time it booked,
            # and the server is not sent a delete for every item the task added
            preserve_function_call_history=True,
        )
        self.call = call
        self.gate = BookingGate(call, self)

    async def on_enter(self) -> None:
        self.call.flow = self.gate
        record_step(self.call, Flow.BOOKING, BookingStep.STARTED)
        self.session.generate_reply(instructions="Go on with the booking from where the caller is.")

    def finish(self, result: BookingResult) -> None:
        self.call.flow = None
        if not self.done():
            self.complete(result)
