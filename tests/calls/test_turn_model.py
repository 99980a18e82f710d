"""TURN_MODEL=v1-mini on recorded caller sentences (tests/fixtures/open_sentences: a neural voice's
sentences, each group cut from the whole sentence so its voice goes on at every pause, through a phone
channel): a caller who pauses mid-sentence after "uh" is not answered until the sentence is over, where
the VAD-timed delay alone answers into the pause; and a dictated number is still paced by its transcript,
not held by the model, which reads a whole number as unfinished."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.settings import load_settings
from simulator.runner import CallReport, format_report, simulate
from simulator.scenario import Scenario
from simulator.server import RealtimeSimulator
from tests.calls.test_dictation import LONG_PAUSES, _heard_only_after_the_last_group

CLIPS = Path(__file__).resolve().parents[1] / "fixtures" / "open_sentences"
ANSWER = "Sure, I can help with that."
# (what the caller says, its recordings, the pauses between them): each long pause follows an "uh",
# where the voice is plainly not done
SENTENCES = {
    "send-someone": ("I was wondering if you could ... uh ... send someone out to look at my water heater.",
                     [CLIPS / f"open-2-{i}.wav" for i in (1, 2, 3)], [300, 1800]),
    "the-bill": ("So ... I have a question about ... uh ... the bill you sent me.",
                 [CLIPS / f"open-16-{i}.wav" for i in (1, 2, 3, 4)], [300, 400, 1600]),
}  # fmt: skip


def sentence_scenario(
    name: str, caller: str, audio: list[Path], pauses: list[int], brain: dict[str, Any] | None = None
) -> Scenario:
    """One recorded caller sentence after the greeting, answered with ANSWER, then a hang-up; `brain`
    changes the plumber's brain."""
    return Scenario.model_validate({
        "name": f"open-sentence-{name}",
        "brain": "brains/plumbing.yaml",
        "brain_overrides": brain,
        "clock": "2026-11-24T10:00:00-08:00",
        "model_delay_ms": 600,
        "greeting": [{"say": "Rose City Plumbing, AI assistant. How can I help?"}],
        "turns": [
            # a speculative reply asked for at a pause (and cancelled as the caller goes on) takes a step too
            {"caller": caller, "audio": [str(p) for p in audio], "pauses_ms": pauses, "model": [{"say": ANSWER}] * 4},
            {"pause_before_ms": 1500, "hangup": True},
        ],
    })  # fmt: skip


def _mid_turn(report: CallReport) -> list[dict[str, Any]]:
    said = report.spoken[-1]
    return [h for h in report.heard if h["first_voice"] is not None and said["started"] < h["first_voice"] < said["ended"]]


async def call_sentence(scenario: Scenario, **settings: Any) -> tuple[CallReport, RealtimeSimulator]:
    """The scenario played through a session (its model's delay, 600 ms from sentence_scenario; a 400 ms
    transcriber) with these settings."""
    async with RealtimeSimulator(transcription_delay_ms=400) as sim:
        report = await simulate(scenario, audio=True, sim=sim,
                                settings=load_settings(openai_api_key="sim", _env_file=None, **settings))  # fmt: skip
    return report, sim


async def _call(name: str, **settings: Any) -> tuple[CallReport, RealtimeSimulator]:
    return await call_sentence(sentence_scenario(name, *SENTENCES[name]), **settings)


def answered_once_after_the_whole_sentence(report: CallReport, sim: RealtimeSimulator, sentence: str) -> None:
    """No agent voice inside the sentence, one uncut answer after it, and that answer asked for with the
    whole sentence committed."""
    assert not _mid_turn(report), (report.heard, format_report(report))
    said = report.spoken[-1]
    after = [h for h in report.heard if h["first_voice"] is not None and h["first_voice"] >= said["ended"]]
    assert len(after) == 1 and not after[0]["interrupted"], (said, report.heard)
    last = max((a for a in sim.asked if a.key == report.sim_key), key=lambda a: a.number)
    committed = " ".join(i["text"] for i in last.items if i["role"] == "user" and i["text"])
    assert (last.said, last.status) == (ANSWER, "completed"), format_report(report)
    assert committed == sentence.replace(" ...", ""), format_report(report)


@pytest.mark.parametrize("name", list(SENTENCES))
async def test_a_pause_mid_sentence_is_not_answered_with_the_turn_model(name: str) -> None:
    report, sim = await _call(name, turn_model="v1-mini")
    answered_once_after_the_whole_sentence(report, sim, SENTENCES[name][0])


@pytest.mark.parametrize("name", list(SENTENCES))
async def test_with_the_vad_alone_the_same_pause_is_answered(name: str) -> None:
    """The control: the VAD-timed delay alone (no model, the words before a pause not read) ends the
    turn in the long pause after "uh"."""
    report, _ = await _call(name, unfinished_hold_seconds=0)
    assert _mid_turn(report), (report.heard, format_report(report))


@pytest.mark.usefixtures("recorded_voice")
async def test_a_dictated_number_is_still_paced_by_its_transcript() -> None:
    """With the model on, a number dictated with 2.0 and 1.5 s pauses after the agent asked for it: no
    agent voice until the last group, then one answer asked for with the whole number committed (the
    pacing, not the model, decides while the caller dictates)."""
    question, dictated, pauses, answer = LONG_PAUSES["phone"]
    await _heard_only_after_the_last_group("dictated-phone-with-turn-model", "I need to check on my booking.",
                                           question, dictated, pauses, answer,
                                           load_settings(openai_api_key="sim", _env_file=None, turn_model="v1-mini"))  # fmt: skip
