"""The grounding guard over the whole labelled corpus (tests/brain/grounding_corpus.yaml): no true
statement is flagged, and every false claim marked must_catch is caught with a correction to say."""

from __future__ import annotations

import pytest

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
