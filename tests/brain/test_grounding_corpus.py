"""The grounding guard over the whole labelled corpus (tests/brain/grounding_corpus.yaml): no true
statement is flagged, whole or while its words still stream, and every false claim marked must_catch
is caught with a correction to say."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from agent.brain import Brain, Violation
from agent.brain.grounding import check_sentence_under_way, may_claim
from agent.playout_guard import watch_sentences
from bench.grounding import Judged, judge, load_corpus


@pytest.fixture(scope="module")
def judged() -> list[Judged]:
    brains, statements = load_corpus()
    return judge(brains, statements)


def test_no_false_alarm_on_a_true_statement(judged: list[Judged]) -> None:
    alarms = [
        f"{j.statement.brain} @ {j.statement.now:%a %H:%M}: {j.statement.say!r} -> {[v.correction for v in j.found]}"
        for j in judged
        if not j.statement.false_claim and j.flagged
    ]
    assert alarms == []


def test_every_must_catch_claim_is_caught_with_a_correction(judged: list[Judged]) -> None:
    missed = [
        f"{j.statement.brain} @ {j.statement.now:%a %H:%M} ({j.statement.kind}): {j.statement.say!r}"
        for j in judged
        if j.statement.must_catch and not j.flagged
    ]
    assert missed == []
    for j in judged:
        if j.statement.must_catch:
            assert all(
                v.correction.startswith("Correction: ") and v.claim in j.statement.say
                for v in j.found
            )


def test_a_must_catch_label_is_only_on_a_false_claim(judged: list[Judged]) -> None:
    assert [
        j.statement.say for j in judged if j.statement.must_catch and not j.statement.false_claim
    ] == []


async def _under_way_alarms(brain: Brain, say: str, now: datetime) -> list[tuple[str, list[Violation]]]:
    """Stream `say` word by word, as the Realtime API sends a transcript, through the watcher the call
    uses; the sentence still streaming is judged each time it gains a word."""
    found: list[tuple[str, list[Violation]]] = []

    async def words() -> AsyncIterator[str]:
        for n, word in enumerate(say.split(" ")):
            yield word if n == 0 else " " + word

    def on_sentence(said: list[str], under_way: str, _starts_ms: float, _gate: object) -> None:
        if under_way:
            if violations := check_sentence_under_way(brain, said, under_way, now):
                found.append((under_way, violations))

    async for _ in watch_sentences(words(), on_sentence):
        pass
    return found


async def test_no_true_statement_alarms_while_its_words_still_stream(judged: list[Judged]) -> None:
    brains, _ = load_corpus()
    alarms = []
    for j in judged:
        if not j.statement.false_claim:
            for under_way, found in await _under_way_alarms(brains[j.statement.brain], j.statement.say, j.statement.now):
                alarms.append(f"{j.statement.say!r} at {under_way!r} -> {[v.correction for v in found]}")
    assert alarms == []


async def test_a_claim_after_a_short_opener_is_caught_before_its_full_stop() -> None:
    brains, _ = load_corpus()
    now = datetime.fromisoformat("2026-03-02T10:00:00-08:00")
    found = await _under_way_alarms(brains["plumbing"], "Sure. We're open on Sundays from 9 AM to 5 PM.", now)
    # judged once "Sundays" is followed by a word that cannot take the claim back
    assert [(w, [(v.kind, v.claim) for v in f]) for w, f in found][:1] == [
        ("We're open on Sundays from", [("hours", "We're open on Sundays")])
    ]


async def test_every_claim_caught_as_it_streams_is_held_from_its_first_words(judged: list[Judged]) -> None:
    """The playout holds a sentence still streaming only while its words so far may make a claim
    (`may_claim`): every false claim the guard catches before its full stop must be held from its
    first word on without a break, so its audio waits for the words that make it false."""
    brains, _ = load_corpus()
    not_held = []
    for j in judged:
        brain = brains[j.statement.brain]
        for under_way, _ in await _under_way_alarms(brain, j.statement.say, j.statement.now):
            words = under_way.split()
            released = [" ".join(words[:k]) for k in range(1, len(words) + 1) if not may_claim(brain, " ".join(words[:k]))]
            if released:
                not_held.append(f"{j.statement.say!r} released at {released[0]!r}")
    assert not_held == []


def test_a_sentence_is_held_until_its_words_show_it_makes_no_claim() -> None:
    brains, _ = load_corpus()
    brain = brains["plumbing"]
    for words in ("Our technicians are licensed and insured, and", "Let me check that for", "Can I get your name"):
        assert not may_claim(brain, words), words
    for words in ("We're open", "Water heater installation is", "That's $", "I have an opening", "We close at",
                  "Can I get"):  # fmt: skip
        assert may_claim(brain, words), words
