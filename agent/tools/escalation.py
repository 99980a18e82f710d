"""Handing the caller to a person: the brain decides who, when people are available, and what the
agent says first. The transfer itself happens after that sentence has been heard (see CallKeeper)."""

from __future__ import annotations

import json
import logging
from typing import Literal

from livekit.agents import RunContext

from agent.brain import schedule
from agent.call import CallContext
from agent.tools.audit import receptionist_tool

log = logging.getLogger("receptionist.escalation")

Reason = Literal[
    "pricing_dispute", "angry_caller", "legal", "explicit_request", "emergency", "complaint", "billing"
]


@receptionist_tool
async def escalate_to_human(context: RunContext[CallContext], reason: Reason, summary: str) -> str:
    """Hand the caller to a person (pricing disputes, angry callers, legal matters, or when they ask).

    Args:
        reason: Why the caller needs a person.
        summary: One sentence for the person taking over: who is calling and what they need.
    """
    call = context.userdata
    esc = call.brain.escalation
    call.extras["escalation"] = {"reason": reason, "summary": summary[:500]}
    if esc.transfer_to is None:
        return json.dumps(
            {"transferring": False, "why": "nobody can take calls by phone at this business",
             "next": "Say so kindly and take a message with a callback request (take_message)."}
        )  # fmt: skip
    if not schedule.humans_available_at(call.brain, call.now()):
        return json.dumps(
            {"transferring": False, "why": "the team is not available right now",
             "next": "Say nobody is available at the moment, and take a message with a callback "
                     "request (take_message, urgency reflecting the situation)."}
        )  # fmt: skip
    if call.line is None:
        return json.dumps(
            {"transferring": False, "why": "this line cannot be transferred",
             "next": "Take a message with a callback request instead."}
        )  # fmt: skip
    if esc.warm_transfer:
        # not built yet (needs an outbound SIP trunk): say so in the log rather than pretend
        log.warning("brain asks for a warm transfer; transferring cold to %s", esc.transfer_to)
    call.pending_action = ("transfer", esc.transfer_to)
    return json.dumps(
        {"transferring": True, "say_now": esc.handoff_line,
         "then": "The transfer starts as soon as you have said that. Say nothing else."}
    )  # fmt: skip
