"""The brain's `calls` section: call length and silence limits, turn-taking overrides, and what callers
hear when the model is down (`model_down`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from agent.brain.schema.fields import FieldProblems, Model, Text


class ModelDown(Model):
    """What callers hear without the AI model, in the business's language: when it cannot be reached,
    and when every line is busy (`busy_line`). Rendered to audio at worker start with espeak-ng in
    `voice`, and played without the model."""

    voice: Text = (
        "en-us"  # an espeak-ng voice (`espeak-ng --voices`): en-us, en-gb, es, fr, de, ...
    )
    hold_line: Text = "One moment, please."
    transfer_line: Text = (
        "I'm sorry, I'm having technical trouble. Let me put you through to a member of our team."
    )
    message_line: Text = (
        "I'm sorry, I'm having technical trouble right now. Please leave your name, your number and "
        "a short message after the tone, and we will call you back."
    )
    goodbye_line: Text = "Thank you, we have your message. Goodbye."
    # a caller who rang while every worker was full (WORKER_OVERFLOW_CALLS): a message after the tone
    busy_line: Text = (
        "I'm sorry, all our lines are busy right now. Please leave your name, your number and a short "
        "message after the tone, and we will call you back."
    )
    message_seconds: int = Field(default=60, ge=10, le=300)  # the longest voicemail taken


MODEL_DOWN_LINE_FIELDS = ("hold_line", "transfer_line", "message_line", "goodbye_line", "busy_line")


class Calls(Model):
    # fractions of a minute too (0.5 is 30 s): a scenario can reach the limit without waiting minutes
    max_duration_minutes: float = Field(default=15, gt=0, le=120)
    silence_prompt_seconds: int = Field(default=8, ge=1, le=120)  # the caller's silence before the check-in
    silence_hangup_seconds: int = Field(default=12, ge=1, le=600)  # then, once it is heard, before the goodbye
    # turn taking for this business's callers; left out, the worker's settings apply
    # (MIN_ENDPOINTING_DELAY, DICTATION_ENDPOINTING_DELAY, DICTATION_HOLD_SECONDS, UNFINISHED_HOLD_SECONDS,
    # CUT_OFF_PATIENCE_SECONDS, MIN_INTERRUPTION_DURATION, SPECULATIVE_REPLY, BACKCHANNEL_SECONDS, BACKCHANNEL_AFTER_SECONDS, NOISE_GATE_DB,
    # TURN_MODEL)
    endpointing_seconds: float | None = Field(default=None, ge=0.1, le=3.0)
    dictation_endpointing_seconds: float | None = Field(default=None, ge=0.1, le=5.0)
    dictation_hold_seconds: float | None = Field(default=None, ge=0.0, le=5.0)
    unfinished_hold_seconds: float | None = Field(default=None, ge=0.0, le=5.0)
    cut_off_patience_seconds: float | None = Field(default=None, ge=0.0, le=3.0)
    interruption_seconds: float | None = Field(default=None, ge=0.05, le=2.0)
    speculative_reply: bool | None = None
    backchannel_seconds: float | None = Field(default=None, ge=0.0, le=3.0)
    backchannel_after_seconds: float | None = Field(default=None, ge=0.0, le=5.0)
    noise_gate_db: float | None = Field(default=None, ge=0.0, le=40.0)
    turn_model: Literal["none", "v1-mini", "smart-turn"] | None = None
    model_down: ModelDown = ModelDown()

    @model_validator(mode="after")
    def _dictation_no_shorter(self) -> Calls:
        if (
            self.endpointing_seconds is not None
            and self.dictation_endpointing_seconds is not None
            and self.dictation_endpointing_seconds < self.endpointing_seconds
        ):
            raise FieldProblems(
                [
                    (
                        ("dictation_endpointing_seconds",),
                        "must not be shorter than endpointing_seconds",
                    )
                ]
            )
        return self
