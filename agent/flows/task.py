"""What every flow shares: its task (the receptionist's instructions plus the flow's steps, the flow's
tools, the gate installed while it runs), the gate's step keeping, and the way in from a tool."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar, NoReturn, TypeVar

from livekit.agents import AgentTask, ToolError, llm

from agent.brain import Brain, render_instructions
from agent.call import CallContext
from agent.flows.steps import Flow, record_step
from agent.playout_guard import GuardedVoice

R = TypeVar("R")


def flow_instructions(brain: Brain, steps: str) -> str:
    """The receptionist's instructions, byte for byte, then the flow's steps: what the model is sent
    changes only at its end when the flow starts, so the cached prefix still holds."""
    return render_instructions(brain) + "\n" + steps + "\n"


class StepGate:
    """A flow's order, enforced where the call lands: every tool call of the call passes `check` while
    the flow runs, and `advance` moves it on (agent/tools/audit.py). Each step reached, and each
    refusal, is recorded once."""

    flow: ClassVar[Flow]
    started: ClassVar[StrEnum]
    left_step: ClassVar[StrEnum]

    def __init__(self, call: CallContext, task: FlowTask[Any]) -> None:
        self.call = call
        self.task = task
        self.step: StrEnum = self.started

    def _reach(self, step: StrEnum) -> None:
        if step != self.step:
            self.step = step
            record_step(self.call, self.flow, step)

    def _refuse(self, missing: str, say: str) -> NoReturn:
        record_step(self.call, self.flow, self.step, refused=missing)
        raise ToolError(say)

    def left(self) -> None:
        """The call ended with the flow under way: a drop-off."""
        if self.call.flow is self:
            self.call.flow = None
        self._reach(self.left_step)

    def check(self, tool: str, arguments: dict[str, Any]) -> None:
        raise NotImplementedError

    def advance(self, tool: str, arguments: dict[str, Any], result: Any) -> None:
        raise NotImplementedError


class FlowTask(GuardedVoice, AgentTask[R]):
    """A flow's LiveKit task: the tools every part of the call keeps, then the flow's own. Its tool
    calls stay in the model's conversation when the receptionist takes the call back (LiveKit deletes
    them by default): the model still knows what was booked or found, and the server is not sent a
    delete for every item the task added."""

    def __init__(
        self, call: CallContext, chat_ctx: llm.ChatContext, *, steps: str, tools: list[Any],
        gate: type[StepGate], go_on: str,
    ) -> None:  # fmt: skip
        super().__init__(
            instructions=flow_instructions(call.brain, steps),
            chat_ctx=chat_ctx,
            tools=tools,
            preserve_function_call_history=True,
        )
        self.call = call
        self.gate = gate(call, self)
        self._go_on = go_on

    async def on_enter(self) -> None:
        self.call.flow = self.gate
        record_step(self.call, self.gate.flow, self.gate.started)
        self.session.generate_reply(instructions=self._go_on)

    def finish(self, result: R) -> None:
        self.call.flow = None
        if not self.done():
            self.complete(result)


async def run_flow(task: FlowTask[R], *, ended: R) -> R:
    """Await the flow from the tool that enters it; `ended` when the call ends under way (LiveKit
    cancels a task whose session closes: the caller hung up)."""
    try:
        return await task
    except ToolError:
        task.gate.left()
        return ended
