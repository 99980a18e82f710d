"""An audio end-of-turn model for the caller's open sentences (TURN_MODEL, off by default).

Silero VAD alone ends a turn after MIN_ENDPOINTING_DELAY of silence, whatever the caller was saying: a
caller who pauses mid-sentence ("I was wondering if you could, uh, ...") is answered. An audio model
reads the last of the caller's voice and says how likely the sentence is finished; LiveKit then ends the
turn at MIN_ENDPOINTING_DELAY when it is likely, and waits up to MAX_ENDPOINTING_DELAY when not.
Measured on open sentences with 0.2-2.5 s pauses (`python -m bench.eot_sweep`, `bench.turn_taking
--material open`): v1-mini cuts far fewer of them than the VAD alone, and doubts some finished ones.

Dictated numbers, codes, emails and named spellings are paced by their transcripts
(agent/turn_pacing.py), which pins both delays while the caller dictates one: both models read a whole
phone number as unfinished, and would hold it to the maximum. After a question for an address, which
has no end to judge, the model may stretch the 1.2 s dictation delay like any other.

- `v1-mini`: LiveKit's local model (`livekit-local-inference`, already installed with the agents), the
  last 1.2 s of the caller's voice, ~30-60 ms per pause on 2 cores; one copy of its weights per process.
- `smart-turn`: Smart Turn v3.2 (agent/smart_turn.py), fetched once from PyPI into the cache.
"""

from __future__ import annotations

from typing import Any

from agent.settings import Settings

# LiveKit asks a streaming turn model only after this much VAD silence (its MIN_SILENCE_DURATION_MS,
# 200 ms, plus 50), and refuses a session whose VAD reports pauses sooner
VAD_SILENCE = 0.25


def with_vad_silence(settings: Settings) -> Settings:
    """`settings` with the VAD silence a turn model needs: every consumer of it (the call's VAD, the
    speculative reply's timing, backchannels) then counts pauses alike."""
    if settings.vad_min_silence_duration >= VAD_SILENCE:
        return settings
    return settings.model_copy(update={"vad_min_silence_duration": VAD_SILENCE})


def vad_silence(settings: Settings) -> float:
    """The VAD silence a call with `settings` hears pauses after: raised when it has a turn model."""
    return with_vad_silence(settings).vad_min_silence_duration if settings.turn_model != "none" \
        else settings.vad_min_silence_duration  # fmt: skip


def detector(settings: Settings) -> Any | None:
    """A new turn detector for one call (the model's weights are shared by the process), or None."""
    threshold = settings.turn_model_threshold
    if settings.turn_model == "v1-mini":
        from livekit.agents.inference import TurnDetector

        return TurnDetector(version="v1-mini", **({} if threshold is None else {"unlikely_threshold": threshold}))
    if settings.turn_model == "smart-turn":
        from agent.smart_turn import SmartTurnDetector

        return SmartTurnDetector(**({} if threshold is None else {"threshold": threshold}))
    return None


def warm(settings: Settings) -> None:
    """Load the model's weights before the first call (a job process's prewarm): v1-mini's first copy
    takes ~0.2 s and later ones share it; Smart Turn downloads its wheel the first time on a machine."""
    if settings.turn_model == "v1-mini":
        from livekit.local_inference import EOT

        EOT()
    elif settings.turn_model == "smart-turn":
        from agent.smart_turn import SmartTurnModel

        SmartTurnModel.load()
