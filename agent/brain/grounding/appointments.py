"""Slots offered or booked ("I can book you for Sunday at 10", "how about Tuesday at 12:30?") on a
closed day or outside opening hours."""

from __future__ import annotations

import re
from datetime import datetime, time

from agent.brain.grounding.clauses import OTHER_SCHEDULE, TIME, Clause, When, minutes_of
from agent.brain.grounding.hours import day_readings, end_minutes, hours_correction
from agent.brain.grounding.text import HEDGE, NEGATION
from agent.brain.grounding.violation import Violation
from agent.brain.schema.brain import Brain

_OFFER = re.compile(
    r"\b(?:i can|i could|we can|we could|i've got|i have|i've|how about|what about|would|does|earliest|"
    r"next opening|next available|first available|available|an opening|a slot|a spot|booked|scheduled|"
    r"book you|put you down|fit you in|get you in|see you|send someone|come out)\b"
)
# the end of a range ("from 9 to 10") is not a start the caller could be booked at
_RANGE_END = re.compile(r"(?:\bto|-|\buntil|\btill|\btil|\bthrough|\bthru)\s*$")


def offer_violations(
    brain: Brain, sentence: str, clauses: list[Clause], here: datetime
) -> list[Violation]:
    found: list[Violation] = []
    for clause in clauses:
        text = clause.text
        if not _OFFER.search(text) or clause.polarity is not None:
            continue  # "we're open Saturday" is an hours claim, judged there
        if NEGATION.search(text) or HEDGE.search(text) or OTHER_SCHEDULE.search(text):
            continue
        if re.search(r"\b(?:nothing|nobody|no one|fully booked)\b", text):
            continue
        when = clause.when
        if not when or when.now or when.anyday:
            continue
        starts: set[int] = set()
        for m in TIME.finditer(text):
            if not _RANGE_END.search(text[: m.start()]):
                starts |= minutes_of(m)
        if re.search(r"\b(?:this|tomorrow) (?:afternoon|evening)\b|\btonight\b", text):
            starts = {t for t in starts if t >= 720}
        correction = _check_slot(brain, when, starts, here)
        if correction:
            found.append(Violation("appointment", sentence, correction))
    return found


def _check_slot(brain: Brain, when: When, starts: set[int], here: datetime) -> str | None:
    """A slot fits a day when one of the ways its time can be read starts inside that day's hours."""

    def fits(hours: list[tuple[time, time]]) -> bool:
        if not starts:
            return bool(hours)
        return any(a.hour * 60 + a.minute <= t < end_minutes(b) for t in starts for a, b in hours)

    wrong = [key for key, rs in day_readings(brain, when, here) if not any(fits(h) for h in rs)]
    return hours_correction(brain, wrong, here) if wrong else None
