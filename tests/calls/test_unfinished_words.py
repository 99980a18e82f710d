"""The words before a caller's pause decide whether it ends their turn (agent/turn_pacing.py,
agent/unfinished.py), on recorded caller sentences (tests/fixtures/open_sentences, cut at their
pauses): with the shipped defaults a caller who stops after "uh", "a question about" or an opening "So"
is not answered until the sentence is over, and the answer is asked for with the whole sentence
committed; the same
long pause after a finished sentence is answered, so it is the words, not the silence, that hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.settings import load_settings
from simulator.runner import CallReport, format_report, simulate
from simulator.server import RealtimeSimulator
from tests.calls.test_turn_model import (
    CLIPS,
    SENTENCES,
    _mid_turn,
    answered_once_after_the_whole_sentence,
    call_sentence,
    sentence_scenario,
)

# the same 2.2 s pause after words that cannot end a sentence, and after a finished one
PAUSE_AFTER = {
    "a-question-about": ("I have a question about ... the bill you sent me.",
                         [CLIPS / "open-16-2.wav", CLIPS / "open-16-4.wav"], [2200]),
    "sent-me": ("the bill you sent me. ... So",
                [CLIPS / "open-16-4.wav", CLIPS / "open-16-1.wav"], [2200]),
    # "So" alone opens a turn and says nothing yet, though a sentence may end on it ("I think so.")
    "so": ("So ... I have a question about ... uh ... the bill you sent me.",
           [CLIPS / f"open-16-{i}.wav" for i in (1, 2, 3, 4)], [2200, 400, 1600]),
}  # fmt: skip


async def _call(
    name: str, caller: str, audio: list[Path], pauses: list[int], brain: dict | None = None
) -> tuple[CallReport, RealtimeSimulator]:
    return await call_sentence(sentence_scenario(f"unfinished-words-{name}", caller, audio, pauses, brain))


@pytest.mark.parametrize("name", list(SENTENCES))
async def test_a_pause_after_uh_is_not_answered_by_default(name: str) -> None:
    report, sim = await _call(name, *SENTENCES[name])
    answered_once_after_the_whole_sentence(report, sim, SENTENCES[name][0])


async def test_a_pause_after_a_preposition_is_not_answered() -> None:
    report, sim = await _call("a-question-about", *PAUSE_AFTER["a-question-about"])
    answered_once_after_the_whole_sentence(report, sim, PAUSE_AFTER["a-question-about"][0])


async def test_a_pause_after_an_opening_so_is_not_answered() -> None:
    report, sim = await _call("so", *PAUSE_AFTER["so"])
    answered_once_after_the_whole_sentence(report, sim, PAUSE_AFTER["so"][0])


async def test_the_same_pause_after_a_finished_sentence_is_answered() -> None:
    report, _ = await _call("sent-me", *PAUSE_AFTER["sent-me"])
    assert _mid_turn(report), (report.heard, format_report(report))


async def test_a_late_transcript_of_the_words_before_does_not_decide_the_next_pause() -> None:
    """"I was wondering if you could", 210 ms, "uh", 1.84 s: the first part's words are transcribed
    after the caller has paused again, and say nothing of how that pause ends."""
    caller, audio, _ = SENTENCES["send-someone"]
    report, sim = await _call("late-words", caller, audio, [210, 1840])
    answered_once_after_the_whole_sentence(report, sim, caller)


# A Spanish caller stops on "la" ("the") for 2.2 s; the transcriber writes Spanish (the recording under
# it is English: the words, not the sound, decide here)
SPANISH = ("Tengo una pregunta sobre la ... factura que me enviaron.", *PAUSE_AFTER["a-question-about"][1:])


async def test_a_spanish_caller_who_stops_on_an_article_is_not_answered() -> None:
    report, sim = await _call("es-la", *SPANISH, brain={"languages": ["en", "es"]})
    answered_once_after_the_whole_sentence(report, sim, SPANISH[0])


async def test_the_same_words_are_answered_where_the_business_speaks_only_english() -> None:
    # "la" is no English word a sentence cannot end on: only the business's languages' lists are read
    report, _ = await _call("en-la", *SPANISH)
    assert _mid_turn(report), (report.heard, format_report(report))


async def test_a_transcript_later_than_the_wait_but_before_the_slow_models_audio_still_holds() -> None:
    """A 1.4 s model and a 0.9 s transcriber: the "uh" pause's words come 0.6 s past the usual delay,
    but half a second before the reply asked for at that pause could be heard, so they still hold the
    turn open; ending it at the usual wait would have played that reply into the caller's pause."""
    caller, audio, pauses = SENTENCES["send-someone"]
    scenario = sentence_scenario("unfinished-words-slow-model", caller, audio, pauses).model_copy(
        update={"model_delay_ms": 1400}
    )
    async with RealtimeSimulator(transcription_delay_ms=900) as sim:
        report = await simulate(scenario, audio=True, sim=sim, settings=load_settings(openai_api_key="sim", _env_file=None))
    answered_once_after_the_whole_sentence(report, sim, caller)
