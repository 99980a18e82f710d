"""What a clause of the agent's speech says about days and times: the days it names (weekly, dated,
holidays, "now"), the times it gives, and whether it calls the business open or closed. The hours and
appointment checks judge what this reads."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

from agent.brain.grounding.text import HEDGE, INTERJECTION, NEGATION, SPOKEN_NUMBERS
from agent.brain.schema.brain import Brain
from agent.brain.schema.fields import WEEKDAYS

_DAY = r"(monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?"
_DAY_RANGE = re.compile(rf"\b{_DAY}\s*(?:to|through|thru|-|until|till)\s*{_DAY}\b")
ONE_DAY = re.compile(rf"\b{_DAY}\b")
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
ROUND_THE_CLOCK = re.compile(
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

OPEN = re.compile(
    r"\b(?:opening hours|open|opens)\b(?!\s+(?:to|up|a|an|the|your|slot|slots|spot|spots|appointment|"
    r"appointments|time|times|availability|opening|openings|question|questions|ticket|case|position)\b)(?!-)"
)
_CLOSED = re.compile(r"\bclosed\b(?!-)")
HOURS = re.compile(
    r"\b(?:our|the|opening|office|business|regular|normal|usual|holiday|weekday|weekend|"
    r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)(?:'s|s)?)\s+hours\b"
)
_STATE_BEFORE = re.compile(
    r"(?:'re|\bare|\bis|'s|\bbe|\bbeen|\bam)(?:\s+(?:usually|normally|typically|also|only|still|generally|always|just|definitely|open))*\s*$"
)
SUBJECT = re.compile(
    r"\b(?:we|we're|we'll|we've|we'd|us|our|office|shop|clinic|practice|store|business|team|doors)\b"
)
# open lines for emergencies and on-call staff are not the booking hours; leave those claims alone
OTHER_SCHEDULE = re.compile(
    r"\b(?:emergenc\w*|on[- ]call|after[- ]hours|phone line|phones?|line|dispatch\w*)\b"
)
# a clause may borrow the verb of the clause before it ("..., and Saturday 8 to 12") only if it says
# nothing else; these are the words such a bare complement may contain
_COMPLEMENT = frozenset(
    "and or but also too as well only on from to through thru until till between at am pm the a "
    "every each week weekend weekends weekdays plus then just in morning afternoon evening noon "
    "midnight o'clock oclock".split()
)
# hours said in words: one..twelve
_HOUR_WORDS = {w: n for w, n in SPOKEN_NUMBERS.items() if 1 <= n <= 12 and w != "a"}
TIME = re.compile(
    r"(?<![\d$.,:/-])(?:(?P<h>\d{1,2})(?::(?P<m>[0-5]\d))?|(?P<w>one|two|three|four|five|six|seven|eight|"
    r"nine|ten|eleven|twelve)(?:[ -](?P<wm>fifteen|thirty|forty[ -]five))?)"
    r"(?:\s*(?P<oc>o'?clock))?(?:\s*(?P<ap>am|pm)\b)?"
    r"(?:\s+(?P<part>in the morning|in the afternoon|in the evening|at night))?"
    r"(?![\d/:])(?!\s*(?:minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|dollars?|bucks|percent|%|"
    r"people|patients|times|st\b|nd\b|rd\b|th\b|-\d|,\d))"
    r"|(?P<noon>\bnoon\b|\bmidday\b)|(?P<midnight>\bmidnight\b)"
)


@dataclass
class When:
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
class Clause:
    text: str
    when: When
    polarity: Literal["open", "closed"] | None
    negated: bool
    state: bool  # "we're open at 3" (a moment) rather than "we open at 3" (opening time)


def minutes_of(m: re.Match[str]) -> set[int]:
    """Minutes after midnight a spoken time could mean; a bare '7' is 7:00 or 19:00."""
    if m.group("noon"):
        return {720}
    if m.group("midnight"):
        return {0, 1440}
    if m.group("h") is not None:
        hour, minute = int(m.group("h")), int(m.group("m") or 0)
    else:
        hour = _HOUR_WORDS[m.group("w")]
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


def _days_of(brain: Brain, text: str, here: datetime) -> When:
    when = When()
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
                when.dates.append((day, say_date(day)))
                break
        rest = rest.replace(m.group(0), " ")
    # "this weekend we're only open Saturday": the named day is the claim, the weekend its setting
    if _THIS_WEEKEND.search(rest):
        if not ONE_DAY.search(_THIS_WEEKEND.sub(" ", rest)):
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
        excepted |= {_day_index(d.group(1)) for d in ONE_DAY.finditer(listed)}
        if _WEEKEND.search(listed):
            excepted |= {5, 6}
        rest = rest.replace(m.group(0), " ")
    when.weekdays |= {_day_index(m.group(1)) for m in ONE_DAY.finditer(rest)}
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


def clauses_of(brain: Brain, lowered: str, here: datetime) -> list[Clause]:
    # "between 8 and 10" is one range; every other "and" may join two claims
    lowered = re.sub(r"\bbetween (\S+(?: [ap]m)?) and ", r"between \1 to ", lowered)
    parts = [p for p in _SPLIT.split(lowered) if p and p.strip()]
    clauses: list[Clause] = []
    previous: Clause | None = None
    for part in parts:
        part = re.sub(rf"^{INTERJECTION}", "", part.strip(" .!?:")).strip()
        if not re.search(r"[a-z0-9]", part):
            continue
        when = _days_of(brain, part, here)
        opens = OPEN.search(part) or HOURS.search(part)
        closed = _CLOSED.search(part)
        polarity: Literal["open", "closed"] | None = None
        state = False
        if opens and not closed:
            polarity = "open"
            state = bool(_STATE_BEFORE.search(part[: opens.start()])) or bool(HOURS.search(part))
        elif closed and not opens:
            polarity = "closed"
            state = True
        has_subject = bool(SUBJECT.search(part)) or part.startswith(
            ("open", "closed", "opening hours")
        )
        if polarity and not has_subject and not HOURS.search(part):
            polarity = None
        negated = bool(NEGATION.search(part))
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
        clause = Clause(part, when, polarity, negated, state)
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
            and not TIME.search(part)
        ):
            previous.when = clause.when  # "we open at 8, on Saturdays"
        if HEDGE.search(part) or OTHER_SCHEDULE.search(part):
            clause.polarity = None
        clauses.append(clause)
        previous = clause
    return clauses


def _names_days_of(when: When, earlier: When) -> bool:
    """Whether `when` only names weekdays of the dates `earlier` spoke of."""
    if not when.weekdays or when.dates or earlier.weekdays or not earlier.dates:
        return False
    return when.weekdays <= {d.weekday() for d, _ in earlier.dates}


def _bare(part: str) -> bool:
    stripped = TIME.sub(" ", part)
    stripped = re.sub(rf"{_DAY}|weekdays|weekends?|today|tomorrow|tonight|not|-", " ", stripped)
    return all(w in _COMPLEMENT for w in re.findall(r"[a-z'0-9]+", stripped))


def say_date(day: date) -> str:
    return f"{WEEKDAYS[day.weekday()].title()}, {day.strftime('%B')} {day.day}"


def spans_many_days(lowered: str) -> bool:
    """Whether a claim speaks of many days at once (weekdays, weekends, every day, around the clock):
    such a claim invites an exception anywhere later ("every day from 7 to 6 except Sunday")."""
    return any(p.search(lowered) for p in (_WEEKDAYS, _WEEKEND, _EVERY_DAY, ROUND_THE_CLOCK))
