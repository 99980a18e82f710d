"""The words before a caller's pause decide whether it ends their turn (agent/turn_pacing.py,
agent/unfinished.py), on recorded caller sentences (tests/fixtures/open_sentences, cut at their
pauses): with the shipped defaults a caller who stops after "uh" or "a question about" is not answered
until the sentence is over, and the answer is asked for with the whole sentence committed; the same
long pause after a finished sentence is answered, so it is the words, not the silence, that hold."""

from __future__ import annotations

from typing import Any

import pytest

from agent.settings import load_settings
from simulator.runner import CallReport, format_report, simulate
from simulator.scenario import Scenario
from simulator.server import RealtimeSimulator
from tests.calls.test_turn_model import ANSWER, CLIPS, SENTENCES, _mid_turn

# the same 2.2 s pause after words that cannot end a sentence, and after a finished one
PAUSE_AFTER = {
    "a-question-about": ("I have a question about ... the bill you sent me.",
                         [CLIPS / "open-16-2.wav", CLIPS / "open-16-4.wav"], [2200]),
    "sent-me": ("the bill you sent me. ... So",
                [CLIPS / "open-16-4.wav", CLIPS / "open-16-1.wav"], [2200]),
}  # fmt: skip


def _scenario(name: str, caller: str, audio: list[Any], pauses: list[int]) -> Scenario:
    return Scenario.model_validate({
        "name": f"unfinished-words-{name}",
        "brain": "brains/plumbing.yaml",
        "clock": "2026-11-24T10:00:00-08:00",
        "greeting": [{"say": "Thanks for calling Rose City Plumbing, this is the AI assistant. How can I help?"}],
        "turns": [
            # a speculative reply asked for at a pause (and cancelled as the caller goes on) takes a step too
            {"caller": caller, "audio": [str(p) for p in audio], "pauses_ms": pauses, "model": [{"say": ANSWER}] * 4},
            {"pause_before_ms": 1500, "hangup": True},
        ],
    })  # fmt: skip


async def _call(name: str, caller: str, audio: list[Any], pauses: list[int]) -> tuple[CallReport, RealtimeSimulator]:
    async with RealtimeSimulator(model_delay_ms=600, transcription_delay_ms=400) as sim:
        report = await simulate(_scenario(name, caller, audio, pauses), audio=True, sim=sim,
                                settings=load_settings(openai_api_key="sim", _env_file=None))  # fmt: skip
    return report, sim


def _answered_once_after_the_whole_sentence(report: CallReport, sim: RealtimeSimulator, sentence: str) -> None:
    assert not _mid_turn(report), (report.heard, format_report(report))
    said = report.spoken[-1]
    after = [h for h in report.heard if h["first_voice"] is not None and h["first_voice"] >= said["ended"]]
    assert len(after) == 1 and not after[0]["interrupted"], (said, report.heard)
    last = max((a for a in sim.asked if a.key == report.sim_key), key=lambda a: a.number)
    committed = " ".join(i["text"] for i in last.items if i["role"] == "user" and i["text"])
    assert (last.said, last.status) == (ANSWER, "completed"), format_report(report)
    assert committed == sentence.replace(" ...", ""), format_report(report)


@pytest.mark.parametrize("name", list(SENTENCES))
async def test_a_pause_after_uh_is_not_answered_by_default(name: str) -> None:
    report, sim = await _call(name, *SENTENCES[name])
    _answered_once_after_the_whole_sentence(report, sim, SENTENCES[name][0])


async def test_a_pause_after_a_preposition_is_not_answered() -> None:
    report, sim = await _call("a-question-about", *PAUSE_AFTER["a-question-about"])
    _answered_once_after_the_whole_sentence(report, sim, PAUSE_AFTER["a-question-about"][0])


async def test_the_same_pause_after_a_finished_sentence_is_answered() -> None:
    report, _ = await _call("sent-me", *PAUSE_AFTER["sent-me"])
    assert _mid_turn(report), (report.heard, format_report(report))


async def test_a_late_transcript_of_the_words_before_does_not_decide_the_next_pause() -> None:
    """"I was wondering if you could", 210 ms, "uh", 1.84 s: the first part's words are transcribed
    after the caller has paused again, and say nothing of how that pause ends."""
    caller, audio, _ = SENTENCES["send-someone"]
    report, sim = await _call("late-words", caller, audio, [210, 1840])
    _answered_once_after_the_whole_sentence(report, sim, caller)
