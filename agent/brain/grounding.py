"""The grounding guard: spots what the agent just said that contradicts the brain: opening hours, slots
offered on closed days or outside hours, prices, services the brain does not list and FAQ answers.

Run on every finished agent turn. It reads plain English with patterns, not a model, and is built for
precision: a claim is flagged only when it is false under every reasonable reading (weekly hours and
the actual next date, AM and PM). Questions (except slot offers), negations and hedges are left alone.
Measured on tests/brain/grounding_corpus.yaml by `python -m bench.grounding`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Literal

from agent.brain.grounding_facts import fact_violations, per_brain
from agent.brain.render import price_text
from agent.brain.schedule import (
    describe_week,
    is_open_at,
    next_open_day,
    opening_hours_on,
    spoken_ranges,
    spoken_time,
    weekly_hours_on,
)
from agent.brain.schema import (
    END_OF_DAY,
    FILLER,
    WEEKDAYS,
    Brain,
    Service,
    service_tokens,
    singular,
)


@dataclass(frozen=True)
class Violation:
    kind: Literal["hours", "appointment", "price", "service", "faq"]
    claim: str  # the sentence that made the claim
    correction: str  # a short sentence from the brain the agent can say instead


def check_turn(brain: Brain, text: str, now: datetime) -> list[Violation]:
    """Every claim in `text` that the brain contradicts, judged at `now`."""
    here = now.astimezone(brain.tz)
    found: list[Violation] = []
    previous: list[Service] = []
    for sentence in sentences(text):
        lowered = _normalise(sentence)
        mentioned = _services_in(brain, lowered)
        clauses = _clauses(brain, lowered, here)
        if not _is_question(lowered):
            found += _hours_violations(brain, sentence, clauses, here)
            found += _price_violations(brain, sentence, lowered, mentioned, previous)
            found += _free_violations(brain, sentence, lowered, mentioned, previous)
            named = [(a, b) for _, a, b in mentioned]
            facts = fact_violations(brain, sentence, lowered, named)
            found += [Violation(k, sentence, c) for k, c in facts]
        # "How about Sunday at 10?" offers a slot as much as "I can book Sunday at 10" does
        found += _offer_violations(brain, sentence, clauses, here)
        previous = []
        for s, _, _ in mentioned:
            if not any(s is p for p in previous):
                previous.append(s)
    unique: dict[tuple[str, str], Violation] = {}
    for v in found:
        unique.setdefault((v.kind, v.correction), v)
    return list(unique.values())


# ---------------------------------------------------------------------------------------------
# text handling


def _normalise(text: str) -> str:
    text = text.lower().replace("’", "'").replace("‘", "'").replace("–", "-").replace("—", "-")
    text = re.sub(r"\b([ap])\.\s?m\.?(?=\s|$|[,;!?)])", r"\1m", text)
    return re.sub(r"\s+", " ", text).strip()


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
    lowered = _normalise(fragment)
    last = _normalise(done[-1]).strip(",;:'\"")
    following = _normalise(next_word).strip(",;:.!?'\"")
    if (
        fragment[-1:] in ",;:-"
        or next_word[-1:] in ",;:-?"  # "open at 9 AM? No, ..." / "open at 9 AM, right?"
        or last in _DANGLING
        or following in _QUALIFIERS
        or (following in _CLOSED_QUALIFIERS and re.search(r"\bclos", lowered))
        # "7 to 6 Monday through Friday and 8 to noon | on Saturday": a day can re-scope what came before
        or ((following == "on" or _ONE_DAY.fullmatch(following)) and _ONE_DAY.search(lowered))
        # claims over many days invite an exception anywhere later ("every day from 7 to 6 except Sunday")
        or any(p.search(lowered) for p in (_WEEKDAYS, _WEEKEND, _EVERY_DAY, _ROUND_THE_CLOCK))
    ):
        return []
    found = check_latest_sentence(brain, [*said[-1:], fragment], now)
    return [v for v in found if v.kind in _UNDER_WAY_KINDS]


def sentences(text: str) -> list[str]:
    text = re.sub(
        r"\b([AaPp])\.\s?[Mm]\.(?=\s+[a-z])", r"\1M", text
    )  # "8 a.m. on" is not a full stop
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


_INTERJECTION = r"(?:(?:yes|yeah|yep|no|nope|sure|ok|okay|well|so|actually|and|but|sorry|unfortunately|great|perfect|right|oh|also)\b[\s,]*)*"
_QUESTION_START = re.compile(
    _INTERJECTION
    + r"(?:are|is|do|does|did|would|could|can|will|shall|should|what|when|which|how|where|who|why|may|have|has)\b"
)


def _is_question(lowered: str) -> bool:
    return lowered.rstrip().endswith("?") or bool(_QUESTION_START.match(lowered))


# ---------------------------------------------------------------------------------------------
# hours: days, times and what is claimed about them

_DAY = r"(monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?"
_DAY_RANGE = re.compile(rf"\b{_DAY}\s*(?:to|through|thru|-|until|till)\s*{_DAY}\b")
_ONE_DAY = re.compile(rf"\b{_DAY}\b")
_EXCEPT = re.compile(
    rf"\b(?:except|other than|besides|apart from|excluding|but not)\s+(?:on\s+|for\s+)?"
    rf"((?:(?:{_DAY}|weekends?|the weekend)(?:\s*(?:,|and|or)\s*)?)+)"
)
_WEEKDAYS = re.compile(
    r"\b(?:weekdays|every weekday|week days|weeknights?|week nights|during the week|business days)\b"
)
_WEEKEND = re.compile(r"\b(?:weekends?|the weekend)\b")
_THIS_WEEKEND = re.compile(r"\b(?:this|all|the whole|this coming) weekend\b")
_EVERY_DAY = re.compile(
    r"\b(?:every ?day|daily|(?:seven|7) days a week|all week|24/7|24 hours a day)\b"
)
# open at every hour of every day: only true of a brain open 00:00-24:00 all week
_ROUND_THE_CLOCK = re.compile(
    r"\b(?:24/7|24 hours|twenty[- ]four hours|around the clock|round[- ]the[- ]clock|never close)\b"
)
# what callers and agents call a holiday other than its name in the brain
_HOLIDAY_NAMES = {
    "independence day": r"(?:the )?(?:fourth|4th) of july|july (?:fourth|4th)",
    "christmas": r"christmas day|xmas",
    "new year's day": r"new year'?s(?! eve)",
}
_THIS_DAY = re.compile(rf"\b(?:this|this coming|coming) {_DAY}\b")
_MONTHS = (
    "january february march april may june july august september october november december".split()
)
_MONTH_DAY = re.compile(rf"\b({'|'.join(_MONTHS)}) (\d{{1,2}})(?:st|nd|rd|th)?\b")
_NOW = re.compile(
    r"\b(?:right now|currently|at the moment|open now|closed now|now open|now closed)\b"
)

_OPEN = re.compile(
    r"\b(?:opening hours|open|opens)\b(?!\s+(?:to|up|a|an|the|your|slot|slots|spot|spots|appointment|"
    r"appointments|time|times|availability|opening|openings|question|questions|ticket|case|position)\b)(?!-)"
)
_CLOSED = re.compile(r"\bclosed\b(?!-)")
_HOURS = re.compile(
    r"\b(?:our|the|opening|office|business|regular|normal|usual|holiday|weekday|weekend|"
    r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)(?:'s|s)?)\s+hours\b"
)
_STATE_BEFORE = re.compile(
    r"(?:'re|\bare|\bis|'s|\bbe|\bbeen|\bam)(?:\s+(?:usually|normally|typically|also|only|still|generally|always|just|definitely|open))*\s*$"
)
_SUBJECT = re.compile(
    r"\b(?:we|we're|we'll|we've|we'd|us|our|office|shop|clinic|practice|store|business|team|doors)\b"
)
_NEGATION = re.compile(r"\b(?:not|never|no|nor|neither|cannot|none)\b|n't\b|\bno longer\b")
_HEDGE = re.compile(
    r"\b(?:if|whether|check|checking|confirm|verify|find out|ask|sure|wonder|wondering|might|maybe|"
    r"possibly|let me|i'll see|you said|you mentioned|you asked|you're asking|you heard|you saw|online|"
    r"website says|google)\b"
)
# open lines for emergencies and on-call staff are not the booking hours; leave those claims alone
_OTHER_SCHEDULE = re.compile(
    r"\b(?:emergenc\w*|on[- ]call|after[- ]hours|phone line|phones?|line|dispatch\w*)\b"
)
# "closed for lunch / in the afternoon / for the holiday" speaks of part of a day or one date
_PARTIAL = re.compile(
    r"\b(?:lunch|break|morning|mornings|afternoon|afternoons|evening|evenings|night|nights|noon|early|"
    r"late|before|after|until|till|from|between|at|for|holiday|holidays|week of|this week|next week|"
    r"vacation|training|renovation)\b"
)
# a clause may borrow the verb of the clause before it ("..., and Saturday 8 to 12") only if it says
# nothing else; these are the words such a bare complement may contain
_COMPLEMENT = frozenset(
    "and or but also too as well only on from to through thru until till between at am pm the a "
    "every each week weekend weekends weekdays plus then just in morning afternoon evening noon "
    "midnight o'clock oclock".split()
)

_TIME = re.compile(
    r"(?<![\d$.,:/-])(?:(?P<h>\d{1,2})(?::(?P<m>[0-5]\d))?|(?P<w>one|two|three|four|five|six|seven|eight|"
    r"nine|ten|eleven|twelve)(?:[ -](?P<wm>fifteen|thirty|forty[ -]five))?)"
    r"(?:\s*(?P<oc>o'?clock))?(?:\s*(?P<ap>am|pm)\b)?"
    r"(?:\s+(?P<part>in the morning|in the afternoon|in the evening|at night))?"
    r"(?![\d/:])(?!\s*(?:minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|dollars?|bucks|percent|%|"
    r"people|patients|times|st\b|nd\b|rd\b|th\b|-\d|,\d))"
    r"|(?P<noon>\bnoon\b|\bmidday\b)|(?P<midnight>\bmidnight\b)"
)


@dataclass
class _When:
    """Days a clause talks about: weekdays (weekly hours) and dates (today, tomorrow, holidays)."""

    weekdays: set[int] = field(default_factory=set)
    dates: list[tuple[date, str]] = field(default_factory=list)  # (day, how it was said)
    now: bool = False
    # "weekdays", "weeknights": a time said of the group is about its open days ("we close at 7 on
    # weeknights" is fair when Monday is closed)
    group: bool = False
    # no day said at all ("we open at 9"): true if some day of the week fits
    anyday: bool = False

    def __bool__(self) -> bool:
        return bool(self.weekdays or self.dates or self.now)


@dataclass
class _Clause:
    text: str
    when: _When
    polarity: Literal["open", "closed"] | None
    negated: bool
    state: bool  # "we're open at 3" (a moment) rather than "we open at 3" (opening time)


def _minutes_of(m: re.Match[str]) -> set[int]:
    """Minutes after midnight a spoken time could mean; a bare '7' is 7:00 or 19:00."""
    if m.group("noon"):
        return {720}
    if m.group("midnight"):
        return {0, 1440}
    if m.group("h") is not None:
        hour, minute = int(m.group("h")), int(m.group("m") or 0)
    else:
        hour = _NUMBER_WORDS[m.group("w")]
        wm = (m.group("wm") or "").replace("-", " ")
        minute = {"": 0, "fifteen": 15, "thirty": 30, "forty five": 45}[wm]
    if hour > 24 or (hour == 24 and minute):
        return set()
    ap = m.group("ap")
    part = m.group("part") or ""
    if not ap and part:
        ap = "am" if "morning" in part else "pm"
    if ap and hour <= 12:
        h = hour % 12 + (12 if ap == "pm" else 0)
        return {h * 60 + minute} | ({1440} if h == 0 and minute == 0 else set())
    if hour >= 13 or hour == 0 or hour == 24:
        return {hour * 60 + minute} | ({0, 1440} if hour in (0, 24) and minute == 0 else set())
    return {hour % 12 * 60 + minute, (hour % 12 + 12) * 60 + minute}


def _day_index(name: str) -> int:
    return WEEKDAYS.index(name.rstrip("s") if name.rstrip("s") in WEEKDAYS else name)


def _days_of(brain: Brain, text: str, here: datetime) -> _When:
    when = _When()
    rest = text
    today = here.date()
    if re.search(r"\bday after tomorrow\b", rest):
        when.dates.append((today + timedelta(days=2), "the day after tomorrow"))
        rest = re.sub(r"\b(?:the )?day after tomorrow\b", " ", rest)
    for m in _THIS_DAY.finditer(rest):
        wd = _day_index(m.group(1))
        day = today + timedelta(days=(wd - today.weekday()) % 7)
        when.dates.append((day, "today" if day == today else f"this {WEEKDAYS[wd].title()}"))
    rest = _THIS_DAY.sub(" ", rest)
    for m in _MONTH_DAY.finditer(rest):
        month, number = _MONTHS.index(m.group(1)) + 1, int(m.group(2))
        for year in (today.year, today.year + 1):
            try:
                day = date(year, month, number)
            except ValueError:
                break
            if day >= today:
                when.dates.append((day, _say_date(day)))
                break
        rest = rest.replace(m.group(0), " ")
    # "this weekend we're only open Saturday": the named day is the claim, the weekend its setting
    if _THIS_WEEKEND.search(rest):
        if not _ONE_DAY.search(_THIS_WEEKEND.sub(" ", rest)):
            for wd in (5, 6):
                day = today + timedelta(days=(wd - today.weekday()) % 7)
                if wd == 5 and today.weekday() == 6:
                    continue  # on a Sunday, "this weekend" is what is left of it
                when.dates.append((day, "today" if day == today else "this weekend"))
        rest = _THIS_WEEKEND.sub(" ", rest)
    rest = re.sub(rf"\bnext ({_DAY})", r"\1", rest)
    for m in _DAY_RANGE.finditer(text):
        a, b = _day_index(m.group(1)), _day_index(m.group(2))
        when.weekdays |= {(a + i) % 7 for i in range((b - a) % 7 + 1)}
        rest = rest.replace(m.group(0), " ")
    excepted: set[int] = set()
    for m in _EXCEPT.finditer(rest):
        listed = m.group(1)
        excepted |= {_day_index(d.group(1)) for d in _ONE_DAY.finditer(listed)}
        if _WEEKEND.search(listed):
            excepted |= {5, 6}
        rest = rest.replace(m.group(0), " ")
    when.weekdays |= {_day_index(m.group(1)) for m in _ONE_DAY.finditer(rest)}
    if _WEEKDAYS.search(rest):
        when.group = not when.weekdays
        when.weekdays |= {0, 1, 2, 3, 4}
    if _WEEKEND.search(rest):
        when.weekdays |= {5, 6}
    if _EVERY_DAY.search(rest):
        when.weekdays |= set(range(7))
    when.weekdays -= excepted
    if re.search(r"\b(?:today|tonight|this (?:morning|afternoon|evening))\b", rest):
        when.dates.append((today, "today"))
    if re.search(r"\btomorrow\b", rest):
        when.dates.append((today + timedelta(days=1), "tomorrow"))
    for closure in sorted(brain.closures, key=lambda c: -len(c.reason)):
        name = re.escape(closure.reason.lower()).replace("'", "'?")
        name = re.sub(r"\\ day$", r"(?:\\ day)?(?!\\ eve)", name)  # New Year's, not its Eve
        other = _HOLIDAY_NAMES.get(closure.reason.lower())
        hit = re.search(rf"\b(?:{name}{'|' + other if other else ''})\b", rest)
        if hit:
            span = (closure.last_day - closure.date).days + 1
            label = closure.reason
            when.dates += [(closure.date + timedelta(days=i), label) for i in range(span)]
            rest = rest.replace(hit.group(0), " ")
    when.now = bool(_NOW.search(rest))
    return when


_SPLIT = re.compile(
    r"\s*(?:[;,]|\s-\s|\bbut\b|\bhowever\b|\bwhereas\b|\balthough\b|\bthough\b|\bwhile\b|\bso\b|\bbecause\b|"
    r"\bsince\b|\band\b)\s*"
)


def _clauses(brain: Brain, lowered: str, here: datetime) -> list[_Clause]:
    # "between 8 and 10" is one range; every other "and" may join two claims
    lowered = re.sub(r"\bbetween (\S+(?: [ap]m)?) and ", r"between \1 to ", lowered)
    parts = [p for p in _SPLIT.split(lowered) if p and p.strip()]
    clauses: list[_Clause] = []
    previous: _Clause | None = None
    for part in parts:
        part = re.sub(rf"^{_INTERJECTION}", "", part.strip(" .!?:")).strip()
        if not re.search(r"[a-z0-9]", part):
            continue
        when = _days_of(brain, part, here)
        opens = _OPEN.search(part) or _HOURS.search(part)
        closed = _CLOSED.search(part)
        polarity: Literal["open", "closed"] | None = None
        state = False
        if opens and not closed:
            polarity = "open"
            state = bool(_STATE_BEFORE.search(part[: opens.start()])) or bool(_HOURS.search(part))
        elif closed and not opens:
            polarity = "closed"
            state = True
        has_subject = bool(_SUBJECT.search(part)) or part.startswith(
            ("open", "closed", "opening hours")
        )
        if polarity and not has_subject and not _HOURS.search(part):
            polarity = None
        negated = bool(_NEGATION.search(part))
        bare = _bare(part)
        inherited = (
            polarity is None and previous is not None and previous.polarity is not None and bare
        )
        if inherited:
            # "..., and Saturday 8 to 12"; "not on Saturday, or Sunday" stays negative
            polarity, state = previous.polarity, previous.state
            negated = negated or previous.negated
        if inherited and previous is not None and _names_days_of(when, previous.when):
            # "closed for Thanksgiving, Thursday and Friday": the days are the holiday's own
            when = previous.when
        clause = _Clause(part, when, polarity, negated, state)
        if previous is not None and not clause.when and previous.when:
            if inherited or (clause.polarity and not previous.polarity):
                clause.when = (
                    previous.when
                )  # "on Saturday, we open at 8" / "Monday to Friday, 7 to 6"
        if (
            previous is not None
            and not previous.when
            and previous.polarity
            and clause.when
            and bare
            and not _TIME.search(part)
        ):
            previous.when = clause.when  # "we open at 8, on Saturdays"
        if _HEDGE.search(part) or _OTHER_SCHEDULE.search(part):
            clause.polarity = None
        clauses.append(clause)
        previous = clause
    return clauses


def _names_days_of(when: _When, earlier: _When) -> bool:
    """Whether `when` only names weekdays of the dates `earlier` spoke of."""
    if not when.weekdays or when.dates or earlier.weekdays or not earlier.dates:
        return False
    return when.weekdays <= {d.weekday() for d, _ in earlier.dates}


def _bare(part: str) -> bool:
    stripped = _TIME.sub(" ", part)
    stripped = re.sub(rf"{_DAY}|weekdays|weekends?|today|tomorrow|tonight|not|-", " ", stripped)
    return all(w in _COMPLEMENT for w in re.findall(r"[a-z'0-9]+", stripped))


def _hours_violations(
    brain: Brain, sentence: str, clauses: list[_Clause], here: datetime
) -> list[Violation]:
    found: list[Violation] = []
    for clause in clauses:
        close_claims = _close_times(clause.text)
        if _claims_round_the_clock(clause):
            correction = _check_round_the_clock(brain)
            if correction:
                found.append(Violation("hours", sentence, correction))
            continue
        if clause.negated:
            continue
        if not clause.when:
            if not (clause.polarity == "open" and _TIME.search(clause.text)) and not close_claims:
                continue
            clause.when = _When(weekdays=set(range(7)), anyday=True)
        correction = None
        if clause.polarity == "open":
            correction = _check_open(brain, clause, here)
        elif clause.polarity == "closed":
            if not _PARTIAL.search(clause.text):
                correction = _check_closed(brain, clause, here)
        if correction is None and close_claims and not _HEDGE.search(clause.text):
            correction = _check_times(brain, clause.when, set(), close_claims, set(), here)
        if correction:
            found.append(Violation("hours", sentence, correction))
    return found


def _claims_round_the_clock(clause: _Clause) -> bool:
    if not _ROUND_THE_CLOCK.search(clause.text) or _HEDGE.search(clause.text):
        return False
    if _OTHER_SCHEDULE.search(clause.text):
        return False  # "our emergency line is open 24/7"
    if re.search(r"\bnever close\b", clause.text):
        return bool(_SUBJECT.search(clause.text))
    return clause.polarity == "open" and not clause.negated


def _check_round_the_clock(brain: Brain) -> str | None:
    if all(weekly_hours_on(brain, wd) == [(time(0), END_OF_DAY)] for wd in range(7)):
        return None
    return f"Correction: we're not open around the clock. Our regular hours are {describe_week(brain)}."


# ---------------------------------------------------------------------------------------------
# slots offered or booked: "I can book you for Sunday at 10", "how about Tuesday at 12:30?"

_OFFER = re.compile(
    r"\b(?:i can|i could|we can|we could|i've got|i have|i've|how about|what about|would|does|earliest|"
    r"next opening|next available|first available|available|an opening|a slot|a spot|booked|scheduled|"
    r"book you|put you down|fit you in|get you in|see you|send someone|come out)\b"
)
# the end of a range ("from 9 to 10") is not a start the caller could be booked at
_RANGE_END = re.compile(r"(?:\bto|-|\buntil|\btill|\btil|\bthrough|\bthru)\s*$")


def _offer_violations(
    brain: Brain, sentence: str, clauses: list[_Clause], here: datetime
) -> list[Violation]:
    found: list[Violation] = []
    for clause in clauses:
        text = clause.text
        if not _OFFER.search(text) or clause.polarity is not None:
            continue  # "we're open Saturday" is an hours claim, judged there
        if _NEGATION.search(text) or _HEDGE.search(text) or _OTHER_SCHEDULE.search(text):
            continue
        if re.search(r"\b(?:nothing|nobody|no one|fully booked)\b", text):
            continue
        when = clause.when
        if not when or when.now or when.anyday:
            continue
        starts: set[int] = set()
        for m in _TIME.finditer(text):
            if not _RANGE_END.search(text[: m.start()]):
                starts |= _minutes_of(m)
        if re.search(r"\b(?:this|tomorrow) (?:afternoon|evening)\b|\btonight\b", text):
            starts = {t for t in starts if t >= 720}
        correction = _check_slot(brain, when, starts, here)
        if correction:
            found.append(Violation("appointment", sentence, correction))
    return found


def _check_slot(brain: Brain, when: _When, starts: set[int], here: datetime) -> str | None:
    """A slot fits a day when one of the ways its time can be read starts inside that day's hours."""

    def fits(hours: list[tuple[time, time]]) -> bool:
        if not starts:
            return bool(hours)
        return any(a.hour * 60 + a.minute <= t < _end_minutes(b) for t in starts for a, b in hours)

    wrong = [key for key, rs in _readings(brain, when, here) if not any(fits(h) for h in rs)]
    return _correct(brain, wrong, here) if wrong else None


def _close_times(text: str) -> set[int]:
    """Closing times said with 'close(s) at 6' / 'closing time is 6', whatever the clause's verb."""
    out: set[int] = set()
    for m in _TIME.finditer(text):
        before = text[: m.start()]
        if re.search(
            r"\b(?:close|closes|closing|close up)\s+(?:time\s+)?(?:is\s+)?(?:at\s+)?$", before
        ):
            out |= _minutes_of(m)
    return out


def _check_open(brain: Brain, clause: _Clause, here: datetime) -> str | None:
    text = clause.text
    times = list(_TIME.finditer(text))
    opens: set[int] = set()
    closes: set[int] = set()
    moments: set[int] = set()
    used: set[int] = set()
    for a, b in zip(times, times[1:], strict=False):
        between = text[a.end() : b.start()]
        joined = re.fullmatch(r"\s*(?:to|-|until|till|til|through|thru)\s*", between)
        if joined is None and re.fullmatch(r"\s*and\s*", between):
            joined = re.search(r"\bbetween\s*$", text[: a.start()])
        if joined and a.start() not in used:
            opens |= _minutes_of(a)
            closes |= _minutes_of(b)
            used |= {a.start(), b.start()}
    keyword = _OPEN.search(text) or _HOURS.search(text)
    for m in times:
        if m.start() in used:
            continue
        before = text[: m.start()]
        if re.search(r"\b(?:until|till|til)\s*$", before):
            closes |= _minutes_of(m)
        elif re.search(r"\bfrom\s*$", before):
            opens |= _minutes_of(m)
        elif keyword and keyword.end() <= m.start() and re.search(r"(?:\bat|\bopens?)\s*$", before):
            (moments if clause.state else opens).update(_minutes_of(m))
    if opens or closes or moments:
        return _check_times(brain, clause.when, opens, closes, moments, here)
    return _check_day_state(brain, clause.when, want_open=True, here=here)


def _check_closed(brain: Brain, clause: _Clause, here: datetime) -> str | None:
    return _check_day_state(brain, clause.when, want_open=False, here=here)


def _readings(
    brain: Brain, when: _When, here: datetime
) -> list[tuple[str, list[list[tuple[time, time]]]]]:
    """Each day the clause names, with every set of hours it could reasonably mean."""
    out = []
    for wd in sorted(when.weekdays):
        # "Friday" is the weekly schedule, or the coming Friday (which may be a holiday)
        ahead = (wd - here.weekday()) % 7
        nxt = here.date() + timedelta(days=ahead)
        hours = [weekly_hours_on(brain, wd)] + [
            opening_hours_on(brain, nxt + timedelta(days=7 * k)) for k in range(2)
        ]
        out.append((f"wd:{wd}", hours))
    for day, label in when.dates:
        out.append((f"d:{day.isoformat()}:{label}", [opening_hours_on(brain, day)]))
    return out


def _check_day_state(brain: Brain, when: _When, want_open: bool, here: datetime) -> str | None:
    if when.anyday:
        return None
    if when.now:
        if is_open_at(brain, here) != want_open:
            return _correct_now(brain, here)
        return None
    wrong: list[str] = []
    for key, readings in _readings(brain, when, here):
        if want_open:
            false_everywhere = all(not h for h in readings)
        elif key.startswith("d:") and key.endswith(":today"):
            # "closed today" is fair once today's last range has ended
            false_everywhere = any(
                _end_minutes(b) > here.hour * 60 + here.minute for _, b in readings[0]
            )
        else:
            false_everywhere = all(h for h in readings)
        if false_everywhere:
            wrong.append(key)
    return _correct(brain, wrong, here) if wrong else None


def _end_minutes(t: time) -> int:
    return 1440 if t == END_OF_DAY else t.hour * 60 + t.minute


def _check_times(
    brain: Brain, when: _When, opens: set[int], closes: set[int], moments: set[int], here: datetime
) -> str | None:
    def fits(hours: list[tuple[time, time]]) -> bool:
        if not hours:
            return False
        starts = {a.hour * 60 + a.minute for a, _ in hours}
        ends = {_end_minutes(b) for _, b in hours}
        ok = True
        if opens:
            ok &= bool(opens & starts)
        if closes:
            ok &= bool(closes & ends)
        if moments:
            ok &= any(
                a.hour * 60 + a.minute <= t < _end_minutes(b) for t in moments for a, b in hours
            )
        return ok

    if when.now:
        return None
    readings = _readings(brain, when, here)
    if when.anyday:
        if any(fits(h) for _, rs in readings for h in rs):
            return None
        return f"Correction: our regular hours are {describe_week(brain)}."
    wrong = [
        key
        for key, rs in readings
        if not any(fits(h) for h in rs) and not (when.group and key.startswith("wd:") and not rs[0])
    ]
    return _correct(brain, wrong, here) if wrong else None


def _correct_now(brain: Brain, here: datetime) -> str:
    if is_open_at(brain, here):
        today = [
            b
            for _, b in opening_hours_on(brain, here.date())
            if _end_minutes(b) > here.hour * 60 + here.minute
        ]
        until = f", until {spoken_time(today[0])}" if today else ""
        return f"Correction: we're open right now{until}."
    return f"Correction: we're closed right now. {_next_open(brain, here.date(), here)}"


def _next_open(brain: Brain, day: date, here: datetime) -> str:
    later_today = [
        a
        for a, _ in opening_hours_on(brain, here.date())
        if a.hour * 60 + a.minute > here.hour * 60 + here.minute
    ]
    if day == here.date() and later_today:
        return f"We open again today at {spoken_time(later_today[0])}."
    nxt = next_open_day(brain, day)
    if nxt is None:
        return ""
    return f"We're next open {_say_date(nxt)}, {spoken_ranges(opening_hours_on(brain, nxt))}."


def _say_date(day: date) -> str:
    return f"{WEEKDAYS[day.weekday()].title()}, {day.strftime('%B')} {day.day}"


def _correct(brain: Brain, wrong: list[str], here: datetime) -> str:
    parts: list[str] = []
    weekly_closed: list[str] = []
    tail = ""
    open_days: list[tuple[int, int, str]] = []  # runs of weekdays with the same hours
    for key in wrong:
        if key.startswith("wd:"):
            wd = int(key[3:])
            hours = weekly_hours_on(brain, wd)
            if not hours:
                weekly_closed.append(f"{WEEKDAYS[wd].title()}s")
            elif (
                open_days
                and open_days[-1][1] == wd - 1
                and open_days[-1][2] == spoken_ranges(hours)
            ):
                open_days[-1] = (open_days[-1][0], wd, open_days[-1][2])
            else:
                open_days.append((wd, wd, spoken_ranges(hours)))
        else:
            _, iso, label = key.split(":", 2)
            day = date.fromisoformat(iso)
            hours = opening_hours_on(brain, day)
            closure = brain.closure_on(day)
            said = label if label in ("today", "tomorrow") else f"on {_say_date(day)}"
            if hours:
                why = f" ({closure.reason})" if closure else ""
                parts.append(f"{said} we're open {spoken_ranges(hours)}{why}")
            else:
                why = f" for {closure.reason}" if closure else ""
                parts.append(f"{said} we're closed{why}")
                tail = " " + _next_open(brain, day, here)
    for i, (first, last, text) in enumerate(open_days):
        if first == last:
            said = f"on {WEEKDAYS[first].title()}s"
        else:
            joiner = " and " if last == first + 1 else " to "
            said = f"{WEEKDAYS[first].title()}{joiner}{WEEKDAYS[last].title()}"
        parts.insert(i, f"{said} we're open {text}")
    if weekly_closed:
        days = (
            weekly_closed[0]
            if len(weekly_closed) == 1
            else ", ".join(weekly_closed[:-1]) + " and " + weekly_closed[-1]
        )
        parts.insert(0, f"we're closed on {days}")
        tail = f" Our regular hours are {describe_week(brain)}."
    text = "; ".join(parts)
    return f"Correction: {text}.{tail}".rstrip()


# ---------------------------------------------------------------------------------------------
# prices

_MONEY_WORDS = {
    "zero": 0,
    "a": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
# hours said in words: one..twelve
_NUMBER_WORDS = {w: n for w, n in _MONEY_WORDS.items() if 1 <= n <= 12 and w != "a"}
_WORD = r"(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand)"
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)"
_WORDS = rf"(?:(?:a|and|{_WORD})[\s-]+)*{_WORD}"
_DOLLARS = r"\s*(?:dollars?|bucks|usd)\b"
_MONEY = re.compile(
    rf"(?P<between>\bbetween\s+)?(?<![\d.,:$])"
    rf"(?:\$\s?(?P<d1>{_NUM})(?:\.(?P<c1>\d{{1,2}}))?"
    rf"|(?P<n1>{_NUM})(?:\.(?P<k1>\d{{1,2}}))?(?={_DOLLARS}|\s*(?:to|-|and)\s*\$?{_NUM}(?:\.\d+)?{_DOLLARS})"
    rf"|\b(?P<w1>{_WORDS})(?={_DOLLARS}|\s*(?:to|-|and)\s*{_WORDS}{_DOLLARS}))"
    rf"(?:{_DOLLARS})?"
    rf"(?:\s*(?P<join>to|-|and)\s*(?:\$\s?(?P<d2>{_NUM})(?:\.(?P<c2>\d{{1,2}}))?|(?P<n2>{_NUM})(?:\.(?P<k2>\d{{1,2}}))?(?![\d:])|\b(?P<w2>{_WORDS})(?={_DOLLARS})))?"
)
_LOWER = re.compile(r"\b(?:starting at|starts at|starting from|start at|from)\s*$")
_AT_LEAST = re.compile(r"\b(?:at least|more than|over|upwards of|minimum of|a minimum of)\s*$")
_AT_MOST = re.compile(
    r"\b(?:under|below|less than|no more than|at most|up to|maximum of|a maximum of|max)\s*$"
)
_NOT_A_PRICE = re.compile(
    r"\b(?:deposits?|fees?|charges?|surcharge|discount|off|credit|copays?|co-pays?|deductible|coupon|save|"
    r"savings?|extra|additional|plus|per|hourly|a year|a month|annual|yearly|monthly|tax|tip|"
    r"parts|insurance|covers?|covered|refund|total|balance|owe|owed|paid|bill|invoice|membership|trip|"
    r"estimate|estimates|budget)\b"
)
# words too common to name one service on their own
_GENERIC = frozenset(
    "visit service appointment repair install new the and with of for check call emergency water "
    "heater patient dental teeth tooth hygiene plumbing home pipe unit tank office".split()
)


def _words_with_spans(lowered: str) -> list[tuple[str, int, int]]:
    """Words normalised like service names (filler dropped), with their places in `lowered`."""
    out = []
    for m in re.finditer(r"[a-z0-9]+(?:[-'’][a-z0-9]+)*", lowered):
        word = re.sub(r"[-'’]", "", m.group(0))
        if word not in FILLER:
            out.append((singular(word), m.start(), m.end()))
    return out


def _services_in(brain: Brain, lowered: str) -> list[tuple[Service, int, int]]:
    """Where services are named in a sentence: (service, start char, end char)."""
    words = _words_with_spans(lowered)
    plain = [w for w, _, _ in words]
    taken: set[int] = set()
    found: list[tuple[Service, int, int]] = []
    for toks, s in per_brain(brain, "service phrases", _service_phrases):
        k = len(toks)
        for i in range(len(plain) - k + 1):
            if plain[i : i + k] == toks and not taken & set(range(i, i + k)):
                taken |= set(range(i, i + k))
                found.append((s, words[i][1], words[i + k - 1][2]))
    return sorted(found, key=lambda f: f[1])


def _service_phrases(brain: Brain) -> list[tuple[list[str], Service]]:
    """Each way a service can be named, longest first: its names, and words only it uses."""
    phrases: list[tuple[list[str], Service]] = []
    counts: dict[str, set[str]] = {}
    for s in brain.services:
        for n in (s.name, *s.aliases):
            toks = service_tokens(n)
            if toks:
                phrases.append((toks, s))
            for t in toks:
                counts.setdefault(t, set()).add(s.name)
    for s in brain.services:
        for t in {t for n in (s.name, *s.aliases) for t in service_tokens(n)}:
            if t not in _GENERIC and len(counts[t]) == 1 and len(t) > 2:
                phrases.append(([t], s))
    phrases.sort(key=lambda p: -len(p[0]))
    return phrases


def _money_value(m: re.Match[str], n: int) -> Decimal | None:
    digits = m.group(f"d{n}") or m.group(f"n{n}")
    if digits:
        cents = m.group(f"c{n}") if m.group(f"d{n}") else m.group(f"k{n}")
        return Decimal(digits.replace(",", "") + (f".{cents}" if cents else ""))
    words = m.group(f"w{n}")
    if not words:
        return None
    total, current = 0, 0
    for w in re.split(r"[\s-]+", words):
        if w == "and":
            continue
        if w == "hundred":
            current = max(current, 1) * 100
        elif w == "thousand":
            total += max(current, 1) * 1000
            current = 0
        else:
            current += _MONEY_WORDS[w]
    return Decimal(total + current)


def _price_violations(
    brain: Brain,
    sentence: str,
    lowered: str,
    mentioned: list[tuple[Service, int, int]],
    previous: list[Service],
) -> list[Violation]:
    found: list[Violation] = []
    boundaries = [
        m.start() for m in re.finditer(r"[;,]|\bbut\b|\band\b|\bwhile\b|\bwhereas\b", lowered)
    ]
    for m in _MONEY.finditer(lowered):
        low = _money_value(m, 1)
        if low is None:
            continue
        high = _money_value(m, 2) if m.group("d2") or m.group("n2") or m.group("w2") else None
        if high is not None and m.group("join") == "and" and not m.group("between"):
            high = None  # "$120 and 2 hours" is not a range; "between $120 and $150" is
        if high is None and m.group("between"):
            continue
        before = lowered[max(0, m.start() - 40) : m.start()]
        after = lowered[m.end() : m.end() + 25]
        hourly = _PER_HOUR.match(after) is not None and high is None
        if hourly:
            after = after[_PER_HOUR.match(after).end() :]  # type: ignore[union-attr]
        if _NOT_A_PRICE.search(" ".join(before.split()[-4:])) or _NOT_A_PRICE.search(
            " ".join(after.split()[:3])
        ):
            continue
        service = _nearest(mentioned, m.start(), boundaries)
        if service is None:
            if (
                mentioned
                or len(previous) != 1
                or not re.search(r"\b(?:it|it's|that|that's|this|they|they're)\b", lowered)
            ):
                continue
            service = previous[0]
        if service is None:
            continue
        price = service.price
        if price is None:
            found.append(
                Violation(
                    "price",
                    sentence,
                    f"Correction: {service.name} has no set price. {service.price_note or ''}".strip(),
                )
            )
            continue
        lo, hi, slack = price.low, price.high, Decimal(1)
        if hourly:
            # "$120 an hour": the rate itself, or the rate over the service's usual length
            total = low * service.duration_minutes / 60
            wrong = not (lo - slack <= low <= hi + slack or lo - slack <= total <= hi + slack)
        elif high is not None:
            wrong = low < lo - slack or high > hi + slack or high < low
        elif _AT_MOST.search(before):
            wrong = low < lo
        elif _AT_LEAST.search(before):
            wrong = low > hi
        elif _LOWER.search(before):
            wrong = abs(low - lo) > slack
        else:
            wrong = low < lo - slack or low > hi + slack
        if wrong:
            text = price_text(price, brain.currency)
            found.append(
                Violation("price", sentence, f"Correction: {service.name.lower()} costs {text}.")
            )
    return found


_PER_HOUR = re.compile(r"\s*(?:an|a|per|/)\s*hour\b|\s*hourly\b")
_FREE = re.compile(r"\b(?:free|free of charge|at no charge|at no cost)\b")
# "free with any repair", "may be free with your plan": a condition the brain cannot confirm or deny
_CONDITIONAL = re.compile(r"\b(?:with|if|when|may|might|could|depending|depends|for you|covered)\b")


def _free_violations(
    brain: Brain,
    sentence: str,
    lowered: str,
    mentioned: list[tuple[Service, int, int]],
    previous: list[Service],
) -> list[Violation]:
    """'The inspection is free' about a service with a price."""
    found: list[Violation] = []
    for part in re.split(r"[;,]|\bbut\b|\bso\b|\band\b", lowered):
        m = _FREE.search(part)
        if (
            not m
            or _NEGATION.search(part)
            or _NOT_A_PRICE.search(part)
            or _CONDITIONAL.search(part)
        ):
            continue
        offset = lowered.find(part)
        inside = [
            (s, a - offset, b - offset) for s, a, b in mentioned if offset <= a < offset + len(part)
        ]
        services = {id(s): s for s, _, _ in inside}
        if (
            not services
            and len(previous) == 1
            and re.search(r"\b(?:it|it's|that|that's|this)\b", part)
        ):
            services = {id(previous[0]): previous[0]}
        if len(services) != 1:
            continue
        service = next(iter(services.values()))
        if service.price is not None and service.price.low > 0:
            text = price_text(service.price, brain.currency)
            found.append(
                Violation("price", sentence, f"Correction: {service.name.lower()} costs {text}.")
            )
    return found


def _nearest(
    mentioned: list[tuple[Service, int, int]], at: int, boundaries: list[int]
) -> Service | None:
    """The service named closest to a price, preferring one in the same clause."""
    if not mentioned:
        return None
    scored = []
    for s, start, end in mentioned:
        gap = at - end if end <= at else start - at
        lo, hi = sorted((at, end if end <= at else start))
        crossings = sum(1 for b in boundaries if lo <= b < hi)
        scored.append((gap + 60 * crossings, s))
    scored.sort(key=lambda x: x[0])
    best = scored[0]
    if best[0] > 120:
        return None
    if len(scored) > 1 and scored[1][0] == best[0] and scored[1][1] is not best[1]:
        return None
    return best[1]
