"""Dictation pacing: after the agent asks for a phone number, an address, a code or a spelling, the
caller's turn ends only after a longer silence (DICTATION_ENDPOINTING_DELAY), so pauses between the
groups they say it in are not taken for the end of their turn."""

from __future__ import annotations

import re
from typing import Any

from livekit.agents import AgentSession

from agent.settings import Settings

# the agent just asked for something callers say in groups, with pauses between them
_DICTATION = re.compile(
    r"\b(phone|number|digits?|address|zip|postcode|postal code|spell|spelling|email|"
    r"confirmation code|code|date of birth|card)\b[^.!]*\?|\bspell\b",
    re.IGNORECASE,
)


def invites_dictation(text: str) -> bool:
    """Did this agent turn ask the caller for a number, an address, a code or a spelling?"""
    return bool(_DICTATION.search(text))


class DictationPacing:
    """The endpointing delay of one call, set by what the agent last asked for."""

    def __init__(self, session: AgentSession[Any], settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self._dictating = False

    def pace_next_turn(self, agent_text: str) -> None:
        """Let a caller who dictates a phone number, an address or a spelling pause between groups
        without being answered mid-way (measured: every 600-900 ms pause was cut at 0.5 s).

        The agent's last words set the pace until it says something else. The caller's transcript is
        no sign that their turn is over: a speculative reply commits the audio at a pause, and the
        transcript of the first groups arrives while the caller is still dictating."""
        dictation = invites_dictation(agent_text)
        if dictation == self._dictating:
            return
        self._dictating = dictation
        delay = self.settings.dictation_endpointing_delay if dictation else self.settings.min_endpointing_delay
        self.session.update_options(endpointing_opts={"min_delay": delay})
