"""Asking for a person: the brain decides which department, whether someone answers there now, and
what the agent says first; the hand-over itself is a task of its own (agent/flows/escalation.py), and
agent/warm_transfer.py makes it warm where the department takes warm transfers."""

from __future__ import annotations

import json

from livekit.agents import RunContext, ToolError
from livekit.agents.llm import ToolResult

from agent.brain import departments
from agent.brain.schema import Trigger
from agent.call import CallContext
from agent.flows.escalation import Handoff, hand_over
from agent.flows.steps import EscalationStep, Flow, record_step
from agent.tools.audit import receptionist_tool
from agent.tools.call_control import end_call
from agent.tools.leads import take_message

Reason = Trigger


@receptionist_tool
async def escalate_to_human(
    context: RunContext[CallContext], reason: Reason, summary: str, department: str | None = None
) -> str | ToolResult:
    """Hand the caller to a person (pricing disputes, angry callers, legal matters, emergencies, or
    when they ask). The reason picks the department; a closed one gives way to the next open one.

    Args:
        reason: Why the caller needs a person.
        summary: One sentence for the person taking over: who is calling and what they need.
        department: Only when the caller asks for a department by name ("billing, please"): that name.
    """
    handoff = plan_handoff(context.userdata, reason, summary, department)
    if isinstance(handoff, str):
        return handoff
    return await hand_over(context, handoff, tools=[take_message, leave_escalation, end_call])


@receptionist_tool
async def leave_escalation(context: RunContext[CallContext], reason: str) -> str:
    """The transfer did not go through and the caller does not want to leave a message, or wants
    something else now.

    Args:
        reason: In a few words, why.
    """
    return json.dumps({"left": True})


def plan_handoff(
    call: CallContext, reason: str, summary: str, department: str | None = None
) -> Handoff | str:
    """Where the call goes and what the caller hears first, or (nobody can take it) what the model is
    told instead. Either way the call's report learns the department and why."""
    brain = call.brain
    everyone = brain.escalation.destinations
    asked = None
    if department and everyone:
        asked = departments.named(brain, department)
        if asked is None:
            raise ToolError(
                f"There is no department {department!r} here; the departments are "
                f"{', '.join(d.name for d in everyone)}. Use one of those names, or leave department "
                "out and the reason picks one."
            )
    record_step(call, Flow.ESCALATION, EscalationStep.REQUESTED)
    route = departments.route(brain, reason, call.now(), asked)
    chosen = route.department
    closed = [d.name for d in route.closed]
    transfers = chosen is not None and call.line is not None
    # the report reads this: which department, where to, and which were closed on the way
    call.extras["escalation"] = {
        "reason": reason, "summary": summary[:500],
        "department": chosen.name if chosen else (closed[0] if closed else None),
        "destination": chosen.transfer_to if transfers else None, "closed": closed,
    }  # fmt: skip
    if not transfers:
        record_step(call, Flow.ESCALATION, EscalationStep.NOBODY_OPEN)
    if not everyone or (chosen is None and not route.closed):
        call.extras["escalation"]["result"] = "no_destination"
        return json.dumps(
            {"transferring": False,
             "why": "nobody can take calls " + ("about this " if everyone else "") + "by phone at this business",
             "next": "Say so kindly and take a message with a callback request (take_message)."}
        )  # fmt: skip
    if chosen is None:
        call.extras["escalation"]["result"] = "people_unavailable"
        return json.dumps(
            {"transferring": False, "why": f"the team is not available right now ({', '.join(closed)}: closed)",
             "next": "Say nobody is available at the moment, and take a message with a callback "
                     "request (take_message, urgency reflecting the situation)."}
        )  # fmt: skip
    if call.line is None:
        call.extras["escalation"]["result"] = "not_possible"
        return json.dumps(
            {"transferring": False, "why": "this line cannot be transferred",
             "next": "Take a message with a callback request instead (take_message)."}
        )  # fmt: skip
    note = None
    if asked is not None and chosen != asked:
        note = f"{asked.name} is closed now; {chosen.name} takes the call instead. Say so first."
    return Handoff(chosen.name, chosen.transfer_to, brain.escalation.say_before(chosen), note)
