"""The grounding guard beside the playout: the agent's transcript streams ahead of its audio, so each
sentence is checked against the brain as its words arrive (`watch_sentences`), and a false one is cut
where it starts, before the caller hears it, and corrected; a whole turn is checked again when it ends."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from livekit import rtc
from livekit.agents import Agent, AgentSession, ModelSettings
from livekit.agents.types import TimedString

from agent.brain.grounding import (
    Violation,
    check_latest_sentence,
    check_sentence_under_way,
    check_turn,
    may_claim,
    sentences,
)
from agent.call import CallContext
from agent.metrics import GUARD_HOLDS
from agent.playout_gate import PlayoutGate

log = logging.getLogger("receptionist.session")

Text = TypeVar("Text", bound=str)


OnSentence = Callable[[list[str], str, float, PlayoutGate | None], None]


async def watch_sentences(
    text: AsyncIterable[Text], on_sentence: OnSentence, gate: PlayoutGate | None = None
) -> AsyncIterator[Text]:
    """One agent message's transcript, passed on untouched and unhurried as it streams. Each time a
    sentence in it is complete (the next one has begun, or the message ended) `on_sentence` gets the
    sentences so far, "" and where in the message's audio the last one starts (the audio received
    when its first word arrived: the model sends words and their audio together); each time the
    sentence still streaming gains a word, it gets the complete sentences before it, that sentence's
    text so far and where it starts. The transcript runs ahead of the playout, so whatever
    `on_sentence` does happens before the caller hears that sentence, beside the playout rather than
    in front of it, and it can have the gate hold a sentence that would play before its words are in."""
    so_far = ""
    done = 0
    starts: list[float] = []
    words_seen = 0  # of the sentence under way

    def audio_ms() -> float:
        return gate.received_ms if gate is not None else 0.0

    async for delta in text:
        yield delta
        so_far += delta
        said = sentences(so_far)
        starts += [audio_ms()] * (len(said) - len(starts))
        while done < len(said) - 1:
            done += 1
            words_seen = 0
            on_sentence(said[:done], "", starts[done - 1], gate)
        if len(said) > done and len(said[-1].split()) > words_seen:
            words_seen = len(said[-1].split())
            on_sentence(said[:-1], said[-1], starts[-1], gate)
    said = sentences(so_far)
    if done < len(said):
        on_sentence(said, "", starts[-1] if len(starts) == len(said) else audio_ms(), gate)


class GuardedVoice(Agent):
    """What every agent of a call speaks through (the receptionist and each flow's task alike): the
    guard reads each sentence as its text completes, ahead of its audio, and each message's audio
    goes through a gate that knows where its sentences start, so the guard can hold one and cut one."""

    _gate: PlayoutGate | None = None

    def realtime_audio_output_node(
        self, audio: AsyncIterable[rtc.AudioFrame], model_settings: ModelSettings
    ) -> AsyncIterable[rtc.AudioFrame]:
        # called for each message before its transcription node
        self._gate = PlayoutGate(self.session, on_hold=GUARD_HOLDS.observe)
        return Agent.default.realtime_audio_output_node(self, self._gate.pass_on(audio), model_settings)

    def transcription_node(
        self, text: AsyncIterable[str | TimedString], model_settings: ModelSettings
    ) -> AsyncIterable[str | TimedString]:
        check = self.session.userdata.on_agent_sentence
        if check is not None:
            text = watch_sentences(text, check, self._gate)
            self._gate = None  # a text-only message after this one has no audio
        return Agent.default.transcription_node(self, text, model_settings)


@dataclass
class _Stopped:
    """A false claim the guard caught while its message was still streaming."""

    violations: list[Violation]
    said_before: str  # the message's sentences before the claim


# wait at most CUT_WAIT_S for a reply's audio to start playing before cutting it anyway; interrupt
# CUT_AFTER_S after the audio before the claim should have played: nothing past the cut plays, so
# waiting costs a moment of silence, where interrupting early would clip the last true word (an
# output counts a frame as played once all of it has)
CUT_WAIT_S = 5.0
CUT_AFTER_S = 0.1


def _letters(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


class PlayoutGuard:
    """One call's guard: cuts a false sentence before it plays, records each violation with whether
    the caller heard it, and has the agent correct itself."""

    def __init__(self, session: AgentSession[CallContext], call: CallContext) -> None:
        self.session = session
        self.call = call
        self._stopped: _Stopped | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        call.on_agent_sentence = self._check_sentence

    def _check_sentence(
        self, said: list[str], under_way: str, starts_at_ms: float, gate: PlayoutGate | None
    ) -> None:
        """A sentence of the message being spoken is complete (`under_way` is "") or has gained a word:
        if it contradicts the brain, cut the audio where that sentence starts, before it plays (the
        plugin truncates the item to what was heard), and say the correction instead."""
        if self._stopped is not None:
            return  # this message is already being cut
        if gate is not None:
            # a sentence that may be a claim does not start to play before its words are in
            claim_shaped = bool(under_way) and may_claim(self.call.brain, under_way)
            gate.hold_at(starts_at_ms if claim_shaped else None)
        if under_way:
            found = check_sentence_under_way(self.call.brain, said, under_way, self.call.now())
            before = said
        else:
            found = check_latest_sentence(self.call.brain, said, self.call.now())
            before = said[:-1]
        if not found:
            return
        self._stopped = _Stopped(found, " ".join(before))
        speech = self.session.current_speech
        if speech is not None and not speech.done():
            task = asyncio.create_task(self._cut(speech, starts_at_ms, gate))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._correct(found)

    async def _cut(self, speech: Any, at_ms: float, gate: PlayoutGate | None) -> None:
        """Stop the message's audio where the claim starts, let the true sentences before it finish
        playing, then interrupt it (the plugin truncates the model's copy to what was played)."""
        if gate is not None:
            gate.stop_at(at_ms)
            waited = 0.0
            while (due := gate.plays_at(at_ms)) is None and waited < CUT_WAIT_S and at_ms > 0:
                await asyncio.sleep(0.02)  # nothing has played yet
                waited += 0.02
            while due is not None and (left := due + CUT_AFTER_S - time.monotonic()) > 0:
                await asyncio.sleep(left)
                due = gate.plays_at(at_ms)  # a hold before the claim moves it later
        if not speech.done():
            speech.interrupt(force=True)  # a false claim is cut even where the caller may not cut in

    def judge_turn(self, text: str, seq: int) -> None:
        """A finished agent turn: record what was cut while it streamed, and correct any false claim
        that got through."""
        violations = check_turn(self.call.brain, text, self.call.now())
        stopped, self._stopped = self._stopped, None
        if stopped is not None:
            # heard: the caller got past the sentences before the claim (into the claim itself)
            heard = len(_letters(text)) > len(_letters(stopped.said_before))
            for v in stopped.violations:
                self.call.record_violation(
                    turn_seq=seq, kind=v.kind, claim=v.claim, correction=v.correction, heard=heard
                )
            log.warning("grounding guard: stopped a false claim %s it was heard: %s",
                        "after" if heard else "before", [v.correction for v in stopped.violations])  # fmt: skip
            known = {v.correction for v in stopped.violations}
            violations = [v for v in violations if v.correction not in known]
        if not violations:
            return
        for v in violations:
            self.call.record_violation(turn_seq=seq, kind=v.kind, claim=v.claim, correction=v.correction)
        log.warning("grounding guard: agent contradicted the brain: %s", [v.correction for v in violations])
        self._correct(violations)

    def _correct(self, violations: list[Violation]) -> None:
        corrections = " ".join(dict.fromkeys(v.correction for v in violations))
        # the next thing the caller hears is the correction, in the same voice
        self.session.generate_reply(
            instructions=(
                "You just told the caller something that contradicts the business's facts. "
                f"Correct yourself now, briefly and plainly, starting with 'Sorry, correction:'. "
                f"The facts: {corrections}"
            ),
            tool_choice="none",
        )
