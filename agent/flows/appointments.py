"""Changing a booking as a LiveKit task: ownership proven -> the booking found and said -> the caller's
yes -> moved or cancelled. find_my_appointments reveals details only under proof (the caller ID, a
number proven by text, or the code with the booked number); this task's gate lets a booking be moved
or cancelled only once it was found that way on this call and the caller has answered since."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from livekit.agents import RunContext, llm

from agent.brain import Brain
from agent.call import CallContext
from agent.flows.steps import AppointmentStep, Flow
from agent.flows.task import FlowTask, StepGate, flow_instructions, left_for_model, run_flow
from agent.store.appointments import normalize_code
from agent.tools import appointment_tools, common_tools
from agent.tools.audit import receptionist_tool

APPOINTMENT_STEPS = """# Now: the caller's existing appointment
You are helping the caller with an appointment they already have; a tool called before its step is refused.
1. Find it with find_my_appointments (the number they call from, or the code and the number it was booked under). Say which appointment it is, and only what the tool returned.
2. To move it, call check_availability and offer times; to cancel it, ask whether they are sure.
3. Only once the caller says yes, call reschedule_appointment or cancel_appointment with that appointment's code. That ends this part, and you tell the caller what changed.
When the caller is done with their appointment, or wants something else, call leave_appointments."""


@dataclass(frozen=True)
class AppointmentResult:
    changed: dict[str, Any] | None = None  # reschedule or cancel output, when changed
    left: str | None = None

    def for_model(self) -> str:
        if self.changed is not None:
            return json.dumps({
                **self.changed,
                "done": "Tell the caller what changed, and ask whether there is anything else (or go on "
                "with anything else they asked).",
            })  # fmt: skip
        return left_for_model("changed", self.left)


class AppointmentGate(StepGate):
    """The order of an appointment change: found under proof, said, the caller's yes, then changed."""

    flow = Flow.APPOINTMENT
    started = AppointmentStep.STARTED
    left_step = AppointmentStep.LEFT

    def __init__(self, call: CallContext, task: FlowTask[Any]) -> None:
        super().__init__(call, task)
        self.found: dict[str, int] = {}  # code -> the caller's turns when it was said to them

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


@receptionist_tool
async def leave_appointments(context: RunContext[CallContext], reason: str) -> str:
    """The caller is done with their existing appointment, or wants something else now.

    Args:
        reason: In a few words, why.
    """
    return json.dumps({"left": True})


def appointment_instructions(brain: Brain) -> str:
    return flow_instructions(brain, APPOINTMENT_STEPS)


def task_tools(brain: Brain) -> list[Any]:
    return [*common_tools(brain), *appointment_tools(brain), leave_appointments]


@receptionist_tool(answers=False)
async def manage_appointment(context: RunContext[CallContext]) -> str:
    """Help with an appointment the caller already has (what is booked, moving it, cancelling it)."""
    task = AppointmentTask(context.userdata, chat_ctx=context.session.current_agent.chat_ctx)
    result = await run_flow(task, ended=AppointmentResult(left="the call ended"))
    return result.for_model()


class AppointmentTask(FlowTask[AppointmentResult]):
    def __init__(self, call: CallContext, chat_ctx: llm.ChatContext) -> None:
        super().__init__(
            call, chat_ctx, steps=APPOINTMENT_STEPS, tools=task_tools(call.brain), gate=AppointmentGate,
            go_on="Go on with the caller's appointment from where they are.",
        )  # fmt: skip
