"""Handing the caller to a person as a LiveKit task: the hand-off line is heard -> the transfer ->
accepted, or refused or unanswered -> a message (or the caller goes on without one). Which department
takes the call, and whether anyone does now, is decided before the task starts (agent/tools/escalation.py);
the line carries the transfer out, warm or cold (agent/telephony.py, agent/warm_transfer.py)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from livekit.agents import RunContext, llm
from livekit.agents.llm import ToolResult

from agent.call import CallContext, CallerLeft, TransferFailed
from agent.flows.steps import EscalationStep, Flow
from agent.flows.task import FlowTask, StepGate, left_for_model, run_flow

log = logging.getLogger("receptionist.escalation")

# said when it happens, not carried in the instructions: the hand-over keeps the receptionist's
# instructions byte for byte, so switching to it and back sends the model none
TRANSFER_FAILED = (
    "The transfer did not go through; nobody could pick up. Apologise briefly and offer to take a "
    "message with a callback request (take_message, urgency reflecting the situation). If the caller "
    "does not want to leave one, or wants something else now, call leave_escalation."
)


@dataclass(frozen=True)
class Handoff:
    """Where the call goes and what the caller hears first."""

    department: str
    destination: str
    say_now: str
    note: str | None = None  # the department the caller asked for is closed: say so first

    def line(self) -> str:
        first = f"{self.note} Then say" if self.note else "Say"
        return (
            f'{first} this to the caller, and nothing else: "{self.say_now}" The transfer to '
            f"{self.department} starts as soon as you have said it."
        )


@dataclass(frozen=True)
class EscalationResult:
    department: str
    ended: EscalationStep  # ACCEPTED, MESSAGE or LEFT
    why: str = ""  # why the caller left without a message

    def for_model(self) -> str | ToolResult:
        if self.ended is EscalationStep.ACCEPTED:
            # the caller is with a person now: a reply would talk over them
            out = {"transferred": True, "department": self.department}
            return ToolResult(json.dumps(out), reply_required=False)
        if self.ended is EscalationStep.MESSAGE:
            return json.dumps({
                "transferred": False, "message_taken": True,
                "done": "Tell the caller their message is with the team (and how soon they will hear back), "
                "and ask whether there is anything else.",
            })  # fmt: skip
        return left_for_model("transferred", self.why)


class EscalationGate(StepGate):
    """A message, or leaving without one, waits for the transfer's outcome."""

    flow = Flow.ESCALATION
    started = EscalationStep.HANDOFF_LINE
    left_step = EscalationStep.LEFT

    def check(self, tool: str, arguments: dict[str, Any]) -> None:
        if tool in ("take_message", "leave_escalation") and self.step is not EscalationStep.FAILED:
            self._refuse("transfer_failed", "The transfer is under way: say nothing more and wait "
                         "for it.")  # fmt: skip

    def advance(self, tool: str, arguments: dict[str, Any], result: Any) -> None:
        task: EscalationTask = self.task  # type: ignore[assignment]
        if tool == "take_message":
            self._reach(EscalationStep.MESSAGE)
            task.finish(EscalationResult(task.handoff.department, EscalationStep.MESSAGE))
        elif tool == "leave_escalation":
            self._reach(EscalationStep.LEFT)
            why = str(arguments.get("reason", ""))
            task.finish(EscalationResult(task.handoff.department, EscalationStep.LEFT, why))

    def transferring(self) -> None:
        self._reach(EscalationStep.TRANSFERRING)

    def transferred(self, accepted: bool) -> None:
        self._reach(EscalationStep.ACCEPTED if accepted else EscalationStep.FAILED)


class EscalationTask(FlowTask[EscalationResult]):
    """The hand-over: the hand-off line, said with no tools to call, then the transfer once it has been
    heard; when nobody takes the call, a message (`tools`: what a caller needs then, and no others)."""

    def __init__(
        self, call: CallContext, chat_ctx: llm.ChatContext, handoff: Handoff, tools: list[Any]
    ) -> None:
        super().__init__(
            call, chat_ctx, steps=None, tools=tools, gate=EscalationGate,
            go_on=handoff.line(),
        )  # fmt: skip
        self.handoff = handoff

    async def on_enter(self) -> None:
        self.enter()
        gate: EscalationGate = self.gate  # type: ignore[assignment]
        heard = self.session.generate_reply(instructions=self._go_on, tool_choice="none")
        # a caller who talks over the line has heard enough of it; one who hangs up ends the task here
        await heard.wait_for_playout()
        line = self.call.line
        assert line is not None  # escalate_to_human hands over only a call with a line
        gate.transferring()
        try:
            await line.transfer(self.handoff.destination)
        except CallerLeft:
            # a drop-off while on hold: recorded now (the session is closing), and nothing more is said
            gate.left()
            self.finish(EscalationResult(self.handoff.department, EscalationStep.LEFT, "the caller hung up"))
            return
        except TransferFailed as e:
            log.warning("transfer to %s failed: %s", self.handoff.department, e)
            gate.transferred(accepted=False)
            self.call.extras["transfer_failed"] = str(e)
            self.session.generate_reply(instructions=TRANSFER_FAILED)
            return
        # recorded before anything can yield: a warm transfer closes the session as it returns
        gate.transferred(accepted=True)
        self.call.set_outcome("escalated")
        self.call.end_reason = "transferred"
        self.finish(EscalationResult(self.handoff.department, EscalationStep.ACCEPTED))


async def hand_over(
    context: RunContext[CallContext], handoff: Handoff, tools: list[Any]
) -> str | ToolResult:
    """Run the hand-over from the tool that decided it (agent/tools/escalation.py, which gives the
    task its tools); the result is what the receptionist is told."""
    chat_ctx = context.session.current_agent.chat_ctx.copy()
    task = EscalationTask(context.userdata, chat_ctx, handoff, tools)
    ended = EscalationResult(handoff.department, EscalationStep.LEFT, "the call ended")
    return (await run_flow(task, ended=ended)).for_model()
