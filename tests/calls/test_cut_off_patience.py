"""A caller the agent has answered mid-sentence gets their own pauses from then on (agent/turn_pacing.py,
CUT_OFF_PATIENCE_SECONDS), on recorded caller sentences (tests/fixtures/open_sentences): "the bill
you sent me." then 0.8 s of silence then "So" is answered in the pause the first time (nothing in its
words holds it), the caller goes on, and the same pause later in the call is not answered; with the
rule off it is answered again."""

from __future__ import annotations

from typing import Any

from simulator.runner import CallReport, format_report
from simulator.scenario import Scenario
from tests.calls.test_turn_model import ANSWER, CLIPS, call_sentence

SAID = "the bill you sent me. ... So"
AUDIO = [str(CLIPS / "open-16-4.wav"), str(CLIPS / "open-16-1.wav")]
PAUSE_MS = 800  # past the 0.45 s end of turn and the reply's first audio (0.15 s VAD + 600 ms model)


def _scenario() -> Scenario:
    turn = {"caller": SAID, "audio": AUDIO, "pauses_ms": [PAUSE_MS], "model": [{"say": ANSWER}] * 4}
    return Scenario.model_validate({
        "name": "cut-off-patience",
        "brain": "brains/plumbing.yaml",
        "clock": "2026-11-24T10:00:00-08:00",
        "greeting": [{"say": "Rose City Plumbing, AI assistant. How can I help?"}],
        "turns": [turn, {**turn, "pause_before_ms": 1500}, {"pause_before_ms": 1500, "hangup": True}],
    })  # fmt: skip


def agent_voice_inside(report: CallReport, turn: int) -> list[dict[str, Any]]:
    said = report.spoken[turn]
    return [h for h in report.heard if h["first_voice"] is not None and said["started"] < h["first_voice"] < said["ended"]]


async def test_a_caller_answered_in_a_pause_is_given_that_pause_afterwards() -> None:
    report, _ = await call_sentence(_scenario())
    assert agent_voice_inside(report, 0), format_report(report)  # the first time, the pause is answered
    assert not agent_voice_inside(report, 1), (report.heard, format_report(report))


async def test_without_the_rule_the_same_pause_is_answered_again() -> None:
    report, _ = await call_sentence(_scenario(), cut_off_patience_seconds=0)
    assert agent_voice_inside(report, 0) and agent_voice_inside(report, 1), format_report(report)
