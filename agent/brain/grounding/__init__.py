"""The grounding guard: spots what the agent just said that contradicts the brain: opening hours, slots
offered on closed days or outside hours, prices, services the brain does not list and FAQ answers.

Run on every finished agent turn. It reads plain English with patterns, not a model, and is built for
precision: a claim is flagged only when it is false under every reasonable reading (weekly hours and
the actual next date, AM and PM). Questions (except slot offers), negations and hedges are left alone.
Measured on tests/brain/grounding_corpus.yaml by `python -m bench.grounding`.

One module per kind of claim: `hours`, `appointments` (slots offered), `prices`, `services` (and the
services named in a sentence), `faqs`; `clauses` reads days and times, `knowledge` what a brain says,
`text` the wording they share, and `guard` runs them all on a turn or a sentence still streaming.
"""

from agent.brain.grounding.guard import (
    check_latest_sentence,
    check_sentence_under_way,
    check_turn,
    may_claim,
)
from agent.brain.grounding.text import sentences
from agent.brain.grounding.violation import Violation

__all__ = [
    "Violation",
    "check_latest_sentence",
    "check_sentence_under_way",
    "check_turn",
    "may_claim",
    "sentences",
]
