"""The grounding guard's entry points: every claim in a turn, the latest sentence, or the sentence
still streaming, checked against the brain by one module per kind of claim."""

from __future__ import annotations

import re
from datetime import datetime

from agent.brain.grounding.appointments import offer_violations
from agent.brain.grounding.clauses import ONE_DAY, clauses_of, spans_many_days
from agent.brain.grounding.faqs import fact_violations
from agent.brain.grounding.hours import hours_violations
from agent.brain.grounding.prices import free_violations, price_violations
from agent.brain.grounding.services import services_in
from agent.brain.grounding.text import SPOKEN_NUMBERS, is_question, normalise, sentences
from agent.brain.grounding.violation import Violation
from agent.brain.schema.brain import Brain
from agent.brain.schema.business import Service


def check_turn(brain: Brain, text: str, now: datetime) -> list[Violation]:
    """Every claim in `text` that the brain contradicts, judged at `now`."""
    here = now.astimezone(brain.tz)
    found: list[Violation] = []
    previous: list[Service] = []
    for sentence in sentences(text):
        lowered = normalise(sentence)
        mentioned = services_in(brain, lowered)
        clauses = clauses_of(brain, lowered, here)
        if not is_question(lowered):
            found += hours_violations(brain, sentence, clauses, here)
            found += price_violations(brain, sentence, lowered, mentioned, previous)
            found += free_violations(brain, sentence, lowered, mentioned, previous)
            named = [(a, b) for _, a, b in mentioned]
            facts = fact_violations(brain, sentence, lowered, named)
            found += [Violation(k, sentence, c) for k, c in facts]
        # "How about Sunday at 10?" offers a slot as much as "I can book Sunday at 10" does
        found += offer_violations(brain, sentence, clauses, here)
        previous = []
        for s, _, _ in mentioned:
            if not any(s is p for p in previous):
                previous.append(s)
    unique: dict[tuple[str, str], Violation] = {}
    for v in found:
        unique.setdefault((v.kind, v.correction), v)
    return list(unique.values())


def check_latest_sentence(brain: Brain, said: list[str], now: datetime) -> list[Violation]:
    """Claims the last of `said` makes that the brain contradicts; the sentences before it are
    context ("A plumbing inspection? That's $150.")."""
    if not said:
        return []
    return [v for v in check_turn(brain, " ".join(said), now) if v.claim == said[-1].strip()]


# A sentence under way is judged on its complete words, and only once the next word has begun and is
# not one that could still narrow or reverse the claim ("open on Sundays | for emergencies", "New
# Year's | Eve", "Saturday | at 10", "no trip fee | inside Portland"). The word under way is matched
# whole: the Realtime API streams a common word as one token with its leading space.
_QUALIFIERS = frozenset(
    "except but besides apart other excluding unless if when whenever while only just eve for with by "
    "in inside outside within during at and or not no never morning mornings afternoon afternoons "
    "evening evenings night nights a an per off more extra plus each".split()
)
# "closed on Saturdays | from noon" speaks of part of the day
_CLOSED_QUALIFIERS = frozenset("from after before until till between through thru to".split())
# a word that needs what follows it: the clause before it is not finished
_DANGLING = frozenset(
    "a an the on at from to until till through thru and or but except for of in by between than "
    "about around approximately roughly starting starts under over least is are we're we our".split()
)
# FAQ and service claims carry their conditions late ("walk-ins | for emergencies"): whole sentences only
_UNDER_WAY_KINDS = frozenset({"hours", "appointment", "price"})


# the words of a claim judged as it streams (an opening, a day or time, an amount, a booking) or of a
# service: a sentence without any so far needs no head start on its audio
_CLAIM_WORDS = re.compile(
    r"[\d$]|\b(?:opens?|opening|openings|close[sd]?|closing|hours?|today|tonight|tomorrow|weekends?|"
    r"weekdays?|weeknights?|noon|midnight|mornings?|afternoons?|evenings?|nights?|holidays?|christmas|"
    r"thanksgiving|easter|new year's|(?:mon|tues|wednes|thurs|fri|satur|sun)days?|prices?|costs?|"
    r"charges?|fees?|free|dollars?|bucks|available|availability|slots?|book|booked|appointments?|"
    r"schedule|earliest|latest|soonest|put you|hundred|"
    # a number said in words ("a" reads as one in "a hundred", but names nothing on its own)
    + "|".join(w for w in SPOKEN_NUMBERS if w != "a")
    + r")\b"
)


# fewer words than this cannot tell a claim from anything else ("I have an | opening")
_TOO_FEW_TO_TELL = 4


def may_claim(brain: Brain, under_way: str) -> bool:
    """Whether the words so far of a sentence still streaming may make a claim the guard judges:
    too few to tell, or naming what such a claim is made of. "Our technicians are licensed" does
    not; "We're open on" and "Water heater installation is" do."""
    lowered = normalise(under_way)
    return (
        len(lowered.split()) < _TOO_FEW_TO_TELL
        or bool(_CLAIM_WORDS.search(lowered))
        or bool(services_in(brain, lowered))
    )


def check_sentence_under_way(
    brain: Brain, said: list[str], under_way: str, now: datetime
) -> list[Violation]:
    """Claims the sentence still streaming (`under_way`, its text so far) already makes that the brain
    contradicts whatever its remaining words say, so the audio can be cut before a short opener ends
    ("Sure. We're open on Sundays" is false before its full stop). Its last word counts as still
    arriving; `said` is the complete sentences before it, for context. Stays silent unless the claim's
    words are complete and the next word has begun without qualifying them: precision first, the
    complete sentence is judged again anyway."""
    words = under_way.split()
    if len(words) < 2:
        return []
    *done, next_word = words
    fragment = " ".join(done)
    lowered = normalise(fragment)
    last = normalise(done[-1]).strip(",;:'\"")
    following = normalise(next_word).strip(",;:.!?'\"")
    if (
        fragment[-1:] in ",;:-"
        or next_word[-1:] in ",;:-?"  # "open at 9 AM? No, ..." / "open at 9 AM, right?"
        or last in _DANGLING
        or following in _QUALIFIERS
        or (following in _CLOSED_QUALIFIERS and re.search(r"\bclos", lowered))
        # "7 to 6 Monday through Friday and 8 to noon | on Saturday": a day can re-scope what came before
        or ((following == "on" or ONE_DAY.fullmatch(following)) and ONE_DAY.search(lowered))
        # claims over many days invite an exception anywhere later ("every day from 7 to 6 except Sunday")
        or spans_many_days(lowered)
    ):
        return []
    found = check_latest_sentence(brain, [*said[-1:], fragment], now)
    return [v for v in found if v.kind in _UNDER_WAY_KINDS]
