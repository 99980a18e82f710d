"""What every flow shares: its task (the receptionist's instructions plus the flow's steps, the flow's
tools, the gate installed while it runs), the gate's step keeping, and the way in from a tool."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, NoReturn, TypeVar

from livekit.agents import AgentTask, RunContext, ToolError, llm
from livekit.agents.utils import shortuuid

from agent.brain import Brain, render_instructions
from agent.call import CallContext
from agent.flows.steps import Flow, FlowGate, record_step
from agent.playout_guard import GuardedVoice

R = TypeVar("R")


@dataclass(frozen=True)
class Opening:
    """A tool the flow's entry ran for the model (its arguments were already in the entry's call),
    so the flow opens with its answer instead of a response spent calling it."""

    tool: str
    arguments: dict[str, Any]
    output: str
    ok: bool


async def open_with(
    context: RunContext[CallContext], chat_ctx: llm.ChatContext, tool: Any, **arguments: Any
) -> Opening:
    """Run `tool` as the model would have (audited and journaled), and put the call and its output
    into the flow's conversation, where the model reads it as its own."""
    try:
        output, ok = await tool(context, **arguments), True
    except ToolError as e:
        output, ok = e.message, False
    name = tool.info.name
    call_id = shortuuid("call_")
    chat_ctx.items.append(llm.FunctionCall(call_id=call_id, name=name, arguments=json.dumps(arguments)))
    chat_ctx.items.append(
        llm.FunctionCallOutput(call_id=call_id, name=name, output=output, is_error=not ok, reply_required=False)
    )
    return Opening(name, arguments, output, ok)


def left_for_model(flag: str, why: str | None) -> str:
    """What the receptionist is told when the caller left a flow before its end (`flag`: what did
    not happen, e.g. "booked")."""
    return json.dumps({flag: False, "why": why, "next": "Carry on with what the caller wants now."})


def flow_instructions(brain: Brain, steps: str | None) -> str:
    """The receptionist's instructions, byte for byte, then the flow's steps: what the model is sent
    changes only at its end when the flow starts, so the cached prefix still holds. A flow without
    steps of its own keeps them unchanged, and the model is sent no instructions at all."""
    if steps is None:
        return render_instructions(brain)
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

    @property
    def ended(self) -> bool:
        """The flow reached its end (not: LiveKit ended its task with the call): the tool that ended
        it asks for no reply of its own, since the receptionist answers (with the whole call's tools)
        once it has the call back."""
        return self.task.finished

    def left(self) -> None:
        """The call ended with the flow under way: a drop-off (not after the flow had ended: a
        transfer the person took closes the call as the flow completes)."""
        if self.call.flow is self:
            self.call.flow = self.task.outer
        if not self.ended:
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
        self, call: CallContext, chat_ctx: llm.ChatContext, *, steps: str | None, tools: list[Any],
        gate: type[StepGate], go_on: str, opening: Opening | None = None,
    ) -> None:  # fmt: skip
        super().__init__(
            instructions=flow_instructions(call.brain, steps),
            chat_ctx=chat_ctx,
            tools=tools,
            preserve_function_call_history=True,
        )
        self.call = call
        self.gate = gate(call, self)
        # the flow this one was entered from (a person asked for mid-booking): it holds the tools again after
        self.outer: FlowGate | None = None
        self.finished = False  # the flow reached its end (a booking made, a transfer taken, ...)
        self._go_on = go_on
        self._opening = opening

    def enter(self) -> None:
        self.outer, self.call.flow = self.call.flow, self.gate
        record_step(self.call, self.gate.flow, self.gate.started)

    async def on_enter(self) -> None:
        self.enter()
        if self._opening is not None and self._opening.ok:
            o = self._opening
            self.gate.advance(o.tool, o.arguments, o.output)
        self.session.generate_reply(instructions=self._go_on)

    def finish(self, result: R) -> None:
        self.call.flow = self.outer
        if not self.done():
            self.finished = True
            self.complete(result)


async def run_flow(task: FlowTask[R], *, ended: R) -> R:
    """Await the flow from the tool that enters it; `ended` when the call ends under way (LiveKit
    cancels a task whose session closes: the caller hung up)."""
    try:
        return await task
    except ToolError:
        task.gate.left()
        return ended
