"""Call control from our side: ending the call (the goodbye is spoken first, then the line is hung up),
and stopping its recording when the caller objects."""

from __future__ import annotations

import json

from livekit.agents import RunContext

from agent.call import CallContext
from agent.tools.audit import receptionist_tool


@receptionist_tool
async def end_call(context: RunContext[CallContext]) -> str:
    """End the call once the caller is done and has said goodbye (or asks you to hang up)."""
    call = context.userdata
    call.hang_up_after_reply = "agent_goodbye"
    call.set_outcome("answered")
    return json.dumps({"ending": True, "say_now": "a short, warm goodbye; the line closes after it"})


@receptionist_tool
async def stop_recording(context: RunContext[CallContext]) -> str:
    """Stop recording this call. Call it as soon as the caller says they do not want to be recorded
    (or asks you to stop recording); then tell them the recording has stopped and carry on."""
    recording = context.userdata.recording
    if recording is None:
        # a text call, or the recorder never started: nothing of the caller is being kept
        return json.dumps({"recording": False, "say_now": "this call is not being recorded"})
    await recording.withdraw()
    return json.dumps({
        "recording": False,
        "say_now": "the recording has stopped and what was recorded is deleted; then carry on helping",
    })
