"""How every call starts, on a phone line (agent/worker.py) and in the scenario runner alike: the
session and its keeper, admission under the caller's rate limit (a repeat caller is told to call back
later), a number no brain claims answered generically, the greeting once the caller can hear it, then
the keeper's watch. Only the line, the model and the audio path differ between the two."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from livekit.agents import NOT_GIVEN, AgentSession, llm, vad

from agent.call import CallContext
from agent.call_keeper import CallKeeper
from agent.fallback_audio import FallbackLibrary
from agent.kept_greeting import shelf_for
from agent.receptionist import Receptionist, RepeatCaller, UnknownNumber
from agent.session import build_session, settings_for_brain
from agent.settings import Settings

# whether to let a call in (agent.live.admission.Admission.admit, with its worker id); None: no live
# state, every call is let in
Admit = Callable[[CallContext], Awaitable[bool]]


@dataclass
class OpenCall:
    """A call whose session is built but not started: the line and audio can still be attached."""

    call: CallContext
    session: AgentSession[CallContext]
    keeper: CallKeeper
    settings: Settings  # this call's: the brain's overrides applied


def open_call(
    call: CallContext,
    settings: Settings,
    *,
    model: Callable[[Settings], llm.RealtimeModel],
    vad_model: vad.VAD | None,
    fallback: FallbackLibrary,
) -> OpenCall:
    """The call's session (its model made from the call's settings) and the keeper that watches it."""
    call_settings = settings_for_brain(settings, call.brain)
    session = build_session(call_settings, call, model=model(call_settings), vad_model=vad_model)
    keeper = CallKeeper(session, call, call_settings, fallback=fallback.for_brain(call.brain))
    return OpenCall(call, session, keeper, call_settings)


async def answer(
    opened: OpenCall,
    *,
    known: bool,
    admit: Admit | None,
    room: Any = None,
    room_options: Any = NOT_GIVEN,
    line_up: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Start the call: pick who answers, start the session (greeting queued at once, heard once the
    line is ready), the call's recording, then wait for the caller's leg (`line_up`) and hand the
    call to its keeper. `known`: a brain claims the dialed number."""
    call, session, keeper = opened.call, opened.session, opened.keeper
    if not known:
        agent: Any = UnknownNumber()
    elif admit is not None and not await admit(call):
        call.set_outcome("error")
        call.end_reason = "rate_limited"
        agent = RepeatCaller(call.brain)
    else:
        agent = Receptionist(call.brain, greeting=shelf_for(opened.settings, call.brain, call.pool))
    start: dict[str, Any] = {"room": room, "room_options": room_options} if room is not None else {}
    # LiveKit's recording uploads to LiveKit Cloud; ours stays here (start_recording)
    await session.start(agent=agent, record=False, **start)
    keeper.session_running = True
    await keeper.start_recording()
    # livekit-sip answers (200 OK) once it has subscribed to our audio track, and our audio output
    # holds frames until that subscription: the greeting can be generated now, overlapping the
    # model's latency with the SIP answer, and still not a syllable is lost
    call.line_ready.set()
    if line_up is not None:
        await line_up()
    call.answered()
    keeper.start()
