"""Builds one call's AgentSession: the Realtime model (with speculative replies and the link that
reconnects it), this call's VAD over the process's Silero model, and the business's turn-taking choices.

Shared by the worker (real rooms) and the scenario runner (simulated line), so a simulated call
exercises the same session as a phone call; `call_keeper.CallKeeper` then keeps the call's record.
"""

from __future__ import annotations

from typing import Any

from livekit.agents import AgentSession, APIConnectOptions, llm, vad
from livekit.plugins import openai

from agent import speaking_rate, turn_model
from agent.backchannel import Backchannels
from agent.brain.schema import Brain
from agent.call import CallContext
from agent.livekit_internals import own_vad
from agent.model_link import LinkedRealtimeModel
from agent.settings import Settings
from agent.speculation import SpeculativeRealtimeModel, Speculator


def settings_for_brain(settings: Settings, brain: Brain) -> Settings:
    """The worker's settings with this business's turn-taking choices (brain `calls:`) applied."""
    c = brain.calls
    chosen = {
        "min_endpointing_delay": c.endpointing_seconds,
        "dictation_endpointing_delay": c.dictation_endpointing_seconds,
        "dictation_hold_seconds": c.dictation_hold_seconds,
        "unfinished_hold_seconds": c.unfinished_hold_seconds,
        "cut_off_patience_seconds": c.cut_off_patience_seconds,
        "min_interruption_duration": c.interruption_seconds,
        "speculative_reply": c.speculative_reply,
        "backchannel_seconds": c.backchannel_seconds,
        "backchannel_after_seconds": c.backchannel_after_seconds,
        "noise_gate_db": c.noise_gate_db,
        "turn_model": c.turn_model,
    }
    update = {k: v for k, v in chosen.items() if v is not None}
    return settings.model_copy(update=update) if update else settings


def realtime_model(
    settings: Settings, *, text_only: bool = False, base_url: str | None = None
) -> openai.realtime.RealtimeModel:
    """OpenAI Realtime, speech to speech, with turn taking left to our local VAD (and speculative
    replies unless SPECULATIVE_REPLY is off); a lost connection is retried MODEL_MAX_RETRIES times
    with the conversation replayed, then reported to the call (agent/model_link.py)."""
    kwargs: dict[str, Any] = {}
    url = base_url or settings.openai_base_url
    if url:
        kwargs["base_url"] = url
    if text_only:
        kwargs["modalities"] = ["text"]
    cls = SpeculativeRealtimeModel if settings.speculative_reply else LinkedRealtimeModel
    if settings.speculative_reply:
        kwargs["max_wait"] = settings.max_endpointing_delay + 1.0
    return cls(
        model=settings.openai_realtime_model,
        voice=settings.openai_voice,
        api_key=settings.openai_api_key.get_secret_value(),
        turn_detection=None,
        conn_options=APIConnectOptions(
            max_retry=settings.model_max_retries,
            retry_interval=settings.model_retry_interval,
            timeout=settings.model_connect_timeout,
        ),
        **kwargs,
    )


def _own_vad(shared: vad.VAD | None, noise_gate_db: float, min_silence: float) -> vad.VAD | None:
    """This call's own VAD object over the process's one loaded Silero model.

    Every session listens to its VAD's once-a-second metrics event; with one VAD object shared by N
    calls in a process, each of the N streams' events reached all N sessions (N^2 callbacks a second:
    a third of a core at 40 calls, measured with py-spy). The ONNX session, the costly part, is shared.
    """
    from livekit.plugins import silero

    if isinstance(shared, silero.VAD):
        return own_vad(shared, noise_gate_db=noise_gate_db, min_silence=min_silence)
    return shared


def build_session(
    settings: Settings,
    call: CallContext,
    *,
    model: llm.RealtimeModel,
    vad_model: vad.VAD | None,
) -> AgentSession[CallContext]:
    calls = call.brain.calls
    speaking_rate.install()
    detector = turn_model.detector(settings) if vad_model is not None else None
    if detector is not None:
        settings = turn_model.with_vad_silence(settings)
    session = AgentSession[CallContext](
        llm=model,
        vad=_own_vad(vad_model, settings.noise_gate_db, settings.vad_min_silence_duration),
        userdata=call,
        turn_handling={
            # explicit, so turn taking is deterministic and local (Silero and, with TURN_MODEL, an audio
            # model), never the server's; text-only sessions (console --text, text scenarios) have no
            # audio to detect turns in
            "turn_detection": detector or ("vad" if vad_model is not None else "manual"),
            "endpointing": {
                "min_delay": settings.min_endpointing_delay,
                "max_delay": settings.max_endpointing_delay,
            },
            "interruption": {
                "enabled": True,
                "mode": "vad",
                "min_duration": settings.min_interruption_duration,
                "resume_false_interruption": True,
                # a paused reply resumes as soon as the end-of-turn decision drops the caller's sound
                # (agent/backchannel.py), not LiveKit's 2 s later; a committed turn still cuts it
                "false_interruption_timeout": 0.0,
            },
        },
        user_away_timeout=float(calls.silence_prompt_seconds),
    )
    if vad_model is not None and settings.backchannel_seconds > 0:
        Backchannels(session, max_seconds=settings.backchannel_seconds, after=settings.backchannel_after_seconds)
    if isinstance(model, SpeculativeRealtimeModel) and vad_model is not None:
        Speculator(
            session, model, lead=settings.speculation_lead, vad_silence=settings.vad_min_silence_duration
        )
    return session
