"""The brain's `recording` section: whether calls are recorded, and the consent line that says so."""

from __future__ import annotations

import re

from pydantic import field_validator

from agent.brain.schema.fields import PLACEHOLDER, Model, Text

# "recorded" in the languages whose lines we ship (languages.MODEL_DOWN_LINES): en, es, fr
RECORDING_WORD = re.compile(
    r"\b(record(ed|ing)?|grabad[ao]s?|grabaci[oó]n|enregistr(é|ée|és|ées|ement))\b", re.IGNORECASE
)


class Recording(Model):
    """Whether this business's calls are recorded (caller and agent, to RECORDINGS_DIR), and the line
    that tells the caller so: spoken right after the greeting's first sentence, the AI disclosure."""

    enabled: bool = False
    consent_line: Text = "This call is recorded; just say so if you'd rather it wasn't."

    @field_validator("consent_line")
    @classmethod
    def _says_recorded(cls, v: str) -> str:
        if not RECORDING_WORD.search(v):
            raise ValueError(
                "must tell the caller the call is recorded (include the word 'recorded', 'grabada' or "
                "'enregistré')"
            )
        if PLACEHOLDER.search(v):
            raise ValueError("placeholders are not substituted in the consent line")
        return v
