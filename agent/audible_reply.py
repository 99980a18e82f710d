"""Which reply the caller is hearing, since when, and whether it answers their turn: what the rules
on a caller who speaks over the agent's first words (agent/yield_on_resume.py, agent/backchannel.py)
need to tell the caller's turn going on from a barge-in or a backchannel."""

from __future__ import annotations

from typing import Any

from livekit.agents import AgentSession
from livekit.agents.metrics import EOUMetrics
from livekit.agents.voice import SpeechHandle
from livekit.agents.voice.events import AgentStateChangedEvent, MetricsCollectedEvent


class AudibleReply:
    """Follows the session's replies: those answering a caller's turn, and when each became audible."""

    def __init__(self, session: AgentSession[Any]) -> None:
        self.session = session
        self._answers: set[str] = set()  # speech ids of replies to a caller's turn
        # the latest reply to become audible, and when it first did (a resume after a false
        # interruption does not restart it)
        self._audible: tuple[str, float] | None = None
        session.on("metrics_collected", self._on_metrics)
        session.on("agent_state_changed", self._on_agent_state)

    def answer(self, at: float) -> tuple[SpeechHandle, float] | None:
        """The reply to the caller's turn the caller is hearing, and for how long they had heard it
        at time `at`; None while the agent is silent or speaking on its own (the greeting, a check on a
        quiet caller)."""
        if self._audible is None or self.session.agent_state != "speaking":
            return None
        speech_id, since = self._audible
        speech = self.session.current_speech
        if speech is None or speech.id != speech_id or speech_id not in self._answers:
            return None
        return speech, at - since

    def _on_metrics(self, ev: MetricsCollectedEvent) -> None:
        # LiveKit reports each end of a caller's turn with the speech that answers it
        if isinstance(ev.metrics, EOUMetrics) and ev.metrics.speech_id:
            self._answers.add(ev.metrics.speech_id)

    def _on_agent_state(self, ev: AgentStateChangedEvent) -> None:
        speech = self.session.current_speech
        if ev.new_state == "speaking" and speech is not None:
            if self._audible is None or self._audible[0] != speech.id:
                self._audible = (speech.id, ev.created_at)
