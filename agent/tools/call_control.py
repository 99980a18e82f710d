"""Ending the call from our side: the goodbye is spoken first, then the line is hung up."""

from __future__ import annotations

import json

from livekit.agents import RunContext

from agent.call import CallContext
from agent.tools.audit import receptionist_tool


@receptionist_tool
async def end_call(context: RunContext[CallContext]) -> str:
    """End the call once the caller is done and has said goodbye (or asks you to hang up)."""
    call = context.userdata
    call.pending_action = ("hang_up", "agent_goodbye")
    call.set_outcome("answered")
    return json.dumps({"ending": True, "say_now": "a short, warm goodbye; the line closes after it"})
