"""Changing a booking as a LiveKit task: ownership proven -> the booking found and said -> the caller's
yes -> moved or cancelled. find_my_appointments reveals details only under proof (the caller ID, a
number proven by text, or the code with the booked number); this task's gate lets a booking be moved
or cancelled only once it was found that way on this call and the caller has answered since."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from livekit.agents import AgentTask, RunContext, ToolError, llm

from agent.brain import Brain, render_instructions
from agent.call import CallContext
from agent.flows.steps import AppointmentStep, Flow, record_step
from agent.playout_guard import GuardedVoice
from agent.store.appointments import normalize_code
from agent.tools import appointment_tools, common_tools
from agent.tools.audit import receptionist_tool

APPOINTMENT_STEPS = """# Now: the caller's existing appointment
You are helping the caller with an appointment they already have; a tool called before its step is refused.
1. Find it with find_my_appointments (the number they call from, or the code and the number it was booked under). Say which appointment it is, and only what the tool returned.
2. To move it, call check_availability and offer times; to cancel it, ask whether they are sure.
3. Only once the caller says yes, call reschedule_appointment or cancel_appointment with that appointment's code.
When the caller is done with their appointment, or wants something else, call leave_appointments."""


@dataclass(frozen=True)
class AppointmentResult:
    changed: dict[str, Any] | None = None  # reschedule or cancel output, when changed
    left: str | None = None

    def for_model(self) -> str:
        if self.changed is not None:
            return json.dumps(
                {
                    "changed": True,
                    "done": "The change is made and was told to the caller. Ask if there is anything else.",
                }
            )
        return json.dumps(
            {"changed": False, "why": self.left, "next": "Carry on with what the caller wants now."}
        )


class AppointmentGate:
    """The order of an appointment change, enforced on every tool call while the task runs."""

    def __init__(self, call: CallContext, task: AppointmentTask) -> None:
        self.call = call
        self.task = task
        self.found: dict[str, int] = {}  # code -> the caller's turns when it was said to them
        self.step = AppointmentStep.STARTED

    def _reach(self, step: AppointmentStep) -> None:
        if step != self.step:
            self.step = step
            record_step(self.call, Flow.APPOINTMENT, step)

    def _refuse(self, missing: str, say: str) -> None:
        record_step(self.call, Flow.APPOINTMENT, self.step, refused=missing)
        raise ToolError(say)

    def check(self, tool: str, arguments: dict[str, Any]) -> None:
        if tool not in ("reschedule_appointment", "cancel_appointment"):
            return
        code = normalize_code(str(arguments.get("confirmation_code", "")))
        if code not in self.found:
            self._refuse("found", "Find that appointment first with find_my_appointments (with its code, "
                         "and the number it was booked under if not the caller ID), and tell the caller which "
                         "one it is.")  # fmt: skip
        if self.call.caller_turns <= self.found[code]:
            self._refuse(
                "caller_confirmed", "Tell the caller what will change and wait for their yes first."
            )

    def advance(self, tool: str, arguments: dict[str, Any], result: Any) -> None:
        if tool == "find_my_appointments":
            found = json.loads(result)
            if isinstance(found, list):  # details, not the count a stranger's number gets
                for a in found:
                    self.found[normalize_code(a["confirmation_code"])] = self.call.caller_turns
                self._reach(AppointmentStep.FOUND)
        elif tool in ("reschedule_appointment", "cancel_appointment"):
            self._reach(
                AppointmentStep.RESCHEDULED
                if tool == "reschedule_appointment"
                else AppointmentStep.CANCELLED
            )
            self.task.finish(AppointmentResult(changed=json.loads(result)))
        elif tool == "leave_appointments":
            self._reach(AppointmentStep.LEFT)
            self.task.finish(AppointmentResult(left=str(arguments.get("reason", ""))))

    def left(self) -> None:
        if self.call.flow is self:
            self.call.flow = None
        self._reach(AppointmentStep.LEFT)


@receptionist_tool
async def leave_appointments(context: RunContext[CallContext], reason: str) -> str:
    """The caller is done with their existing appointment, or wants something else now.

    Args:
        reason: In a few words, why.
    """
    return json.dumps({"left": True})


def appointment_instructions(brain: Brain) -> str:
    """The receptionist's instructions unchanged, then this task's steps (the cached prefix holds)."""
    return render_instructions(brain) + "\n" + APPOINTMENT_STEPS + "\n"


def task_tools(brain: Brain) -> list[Any]:
    return [*common_tools(brain), *appointment_tools(brain), leave_appointments]


@receptionist_tool(answers=False)
async def manage_appointment(context: RunContext[CallContext]) -> str:
    """Help with an appointment the caller already has (what is booked, moving it, cancelling it)."""
    call = context.userdata
    task = AppointmentTask(call, chat_ctx=context.session.current_agent.chat_ctx)
    try:
        result = await task
    except ToolError:
        # LiveKit cancels a task whose session closes: the caller hung up
        task.gate.left()
        result = AppointmentResult(left="the call ended")
    return result.for_model()


class AppointmentTask(GuardedVoice, AgentTask[AppointmentResult]):
    def __init__(self, call: CallContext, chat_ctx: llm.ChatContext) -> None:
        super().__init__(
            instructions=appointment_instructions(call.brain),
            chat_ctx=chat_ctx,
            tools=task_tools(call.brain),
            preserve_function_call_history=True,  # as the booking's: what was found stays known
        )
        self.call = call
        self.gate = AppointmentGate(call, self)

    async def on_enter(self) -> None:
        self.call.flow = self.gate
        record_step(self.call, Flow.APPOINTMENT, AppointmentStep.STARTED)
        self.session.generate_reply(
            instructions="Go on with the caller's appointment from where they are."
        )

    def finish(self, result: AppointmentResult) -> None:
        self.call.flow = None
        if not self.done():
            self.complete(result)
