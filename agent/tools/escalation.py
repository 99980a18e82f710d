"""Handing the caller to a person: the brain decides which department, whether someone answers there
now, and what the agent says first. The transfer itself happens after that sentence has been heard
(see CallKeeper; agent/warm_transfer.py makes it warm where the department takes warm transfers)."""

from __future__ import annotations

import json

from livekit.agents import RunContext, ToolError

from agent.brain import departments
from agent.brain.schema import Trigger
from agent.call import CallContext, LineAction, PendingAction
from agent.flows.steps import EscalationStep, Flow, record_step
from agent.tools.audit import receptionist_tool

Reason = Trigger


@receptionist_tool
async def escalate_to_human(
    context: RunContext[CallContext], reason: Reason, summary: str, department: str | None = None
) -> str:
    """Hand the caller to a person (pricing disputes, angry callers, legal matters, emergencies, or
    when they ask). The reason picks the department; a closed one gives way to the next open one.

    Args:
        reason: Why the caller needs a person.
        summary: One sentence for the person taking over: who is calling and what they need.
        department: Only when the caller asks for a department by name ("billing, please"): that name.
    """
    call = context.userdata
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
    # the report reads this: which department, where to, and which were closed on the way
    call.extras["escalation"] = {
        "reason": reason, "summary": summary[:500],
        "department": chosen.name if chosen else (closed[0] if closed else None),
        "destination": chosen.transfer_to if chosen else None, "closed": closed,
    }  # fmt: skip
    if chosen is None or call.line is None:
        record_step(call, Flow.ESCALATION, EscalationStep.NOBODY_OPEN)
    if not everyone or (chosen is None and not route.closed):
        return json.dumps(
            {"transferring": False,
             "why": "nobody can take calls " + ("about this " if everyone else "") + "by phone at this business",
             "next": "Say so kindly and take a message with a callback request (take_message)."}
        )  # fmt: skip
    if chosen is None:
        return json.dumps(
            {"transferring": False, "why": f"the team is not available right now ({', '.join(closed)}: closed)",
             "next": "Say nobody is available at the moment, and take a message with a callback "
                     "request (take_message, urgency reflecting the situation)."}
        )  # fmt: skip
    if call.line is None:
        return json.dumps(
            {"transferring": False, "why": "this line cannot be transferred",
             "next": "Take a message with a callback request instead."}
        )  # fmt: skip
    call.pending_action = PendingAction(LineAction.TRANSFER, chosen.transfer_to)
    record_step(call, Flow.ESCALATION, EscalationStep.HANDOFF_LINE)
    out = {"transferring": True, "department": chosen.name, "say_now": brain.escalation.say_before(chosen),
           "then": "The transfer starts as soon as you have said that. Say nothing else."}  # fmt: skip
    if asked is not None and chosen != asked:
        out["note"] = (
            f"{asked.name} is closed now; {chosen.name} takes the call instead. Say so first."
        )
    return json.dumps(out)
