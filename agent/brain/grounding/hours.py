"""Claims about opening hours ("we're open Sundays", "we close at 6", "open 24/7", "closed today"),
judged against every reasonable reading of the days named, with a correction said from the brain."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from agent.brain.grounding.clauses import (
    HOURS,
    OPEN,
    OTHER_SCHEDULE,
    ROUND_THE_CLOCK,
    SUBJECT,
    TIME,
    Clause,
    When,
    minutes_of,
    say_date,
)
from agent.brain.grounding.text import HEDGE
from agent.brain.grounding.violation import Violation
from agent.brain.schedule import (
    describe_week,
    is_open_at,
    next_open_day,
    opening_hours_on,
    spoken_ranges,
    spoken_time,
    weekly_hours_on,
)
from agent.brain.schema.brain import Brain
from agent.brain.schema.fields import END_OF_DAY, WEEKDAYS

# "closed for lunch / in the afternoon / for the holiday" speaks of part of a day or one date
_PARTIAL = re.compile(
    r"\b(?:lunch|break|morning|mornings|afternoon|afternoons|evening|evenings|night|nights|noon|early|"
    r"late|before|after|until|till|from|between|at|for|holiday|holidays|week of|this week|next week|"
    r"vacation|training|renovation)\b"
)


def hours_violations(
    brain: Brain, sentence: str, clauses: list[Clause], here: datetime
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
            if not (clause.polarity == "open" and TIME.search(clause.text)) and not close_claims:
                continue
            clause.when = When(weekdays=set(range(7)), anyday=True)
        correction = None
        if clause.polarity == "open":
            correction = _check_open(brain, clause, here)
        elif clause.polarity == "closed":
            if not _PARTIAL.search(clause.text):
                correction = _check_closed(brain, clause, here)
        if correction is None and close_claims and not HEDGE.search(clause.text):
            correction = _check_times(brain, clause.when, set(), close_claims, set(), here)
        if correction:
            found.append(Violation("hours", sentence, correction))
    return found


def _claims_round_the_clock(clause: Clause) -> bool:
    if not ROUND_THE_CLOCK.search(clause.text) or HEDGE.search(clause.text):
        return False
    if OTHER_SCHEDULE.search(clause.text):
        return False  # "our emergency line is open 24/7"
    if re.search(r"\bnever close\b", clause.text):
        return bool(SUBJECT.search(clause.text))
    return clause.polarity == "open" and not clause.negated


def _check_round_the_clock(brain: Brain) -> str | None:
    if all(weekly_hours_on(brain, wd) == [(time(0), END_OF_DAY)] for wd in range(7)):
        return None
    return f"Correction: we're not open around the clock. Our regular hours are {describe_week(brain)}."


def _close_times(text: str) -> set[int]:
    """Closing times said with 'close(s) at 6' / 'closing time is 6', whatever the clause's verb."""
    out: set[int] = set()
    for m in TIME.finditer(text):
        before = text[: m.start()]
        if re.search(
            r"\b(?:close|closes|closing|close up)\s+(?:time\s+)?(?:is\s+)?(?:at\s+)?$", before
        ):
            out |= minutes_of(m)
    return out


def _check_open(brain: Brain, clause: Clause, here: datetime) -> str | None:
    text = clause.text
    times = list(TIME.finditer(text))
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
            opens |= minutes_of(a)
            closes |= minutes_of(b)
            used |= {a.start(), b.start()}
    keyword = OPEN.search(text) or HOURS.search(text)
    for m in times:
        if m.start() in used:
            continue
        before = text[: m.start()]
        if re.search(r"\b(?:until|till|til)\s*$", before):
            closes |= minutes_of(m)
        elif re.search(r"\bfrom\s*$", before):
            opens |= minutes_of(m)
        elif keyword and keyword.end() <= m.start() and re.search(r"(?:\bat|\bopens?)\s*$", before):
            (moments if clause.state else opens).update(minutes_of(m))
    if opens or closes or moments:
        return _check_times(brain, clause.when, opens, closes, moments, here)
    return _check_day_state(brain, clause.when, want_open=True, here=here)


def _check_closed(brain: Brain, clause: Clause, here: datetime) -> str | None:
    return _check_day_state(brain, clause.when, want_open=False, here=here)


def day_readings(
    brain: Brain, when: When, here: datetime
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


def _check_day_state(brain: Brain, when: When, want_open: bool, here: datetime) -> str | None:
    if when.anyday:
        return None
    if when.now:
        if is_open_at(brain, here) != want_open:
            return _correct_now(brain, here)
        return None
    wrong: list[str] = []
    for key, readings in day_readings(brain, when, here):
        if want_open:
            false_everywhere = all(not h for h in readings)
        elif key.startswith("d:") and key.endswith(":today"):
            # "closed today" is fair once today's last range has ended
            false_everywhere = any(
                end_minutes(b) > here.hour * 60 + here.minute for _, b in readings[0]
            )
        else:
            false_everywhere = all(h for h in readings)
        if false_everywhere:
            wrong.append(key)
    return hours_correction(brain, wrong, here) if wrong else None


def end_minutes(t: time) -> int:
    return 1440 if t == END_OF_DAY else t.hour * 60 + t.minute


def _check_times(
    brain: Brain, when: When, opens: set[int], closes: set[int], moments: set[int], here: datetime
) -> str | None:
    def fits(hours: list[tuple[time, time]]) -> bool:
        if not hours:
            return False
        starts = {a.hour * 60 + a.minute for a, _ in hours}
        ends = {end_minutes(b) for _, b in hours}
        ok = True
        if opens:
            ok &= bool(opens & starts)
        if closes:
            ok &= bool(closes & ends)
        if moments:
            ok &= any(
                a.hour * 60 + a.minute <= t < end_minutes(b) for t in moments for a, b in hours
            )
        return ok

    if when.now:
        return None
    readings = day_readings(brain, when, here)
    if when.anyday:
        if any(fits(h) for _, rs in readings for h in rs):
            return None
        return f"Correction: our regular hours are {describe_week(brain)}."
    wrong = [
        key
        for key, rs in readings
        if not any(fits(h) for h in rs) and not (when.group and key.startswith("wd:") and not rs[0])
    ]
    return hours_correction(brain, wrong, here) if wrong else None


def _correct_now(brain: Brain, here: datetime) -> str:
    if is_open_at(brain, here):
        today = [
            b
            for _, b in opening_hours_on(brain, here.date())
            if end_minutes(b) > here.hour * 60 + here.minute
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
    return f"We're next open {say_date(nxt)}, {spoken_ranges(opening_hours_on(brain, nxt))}."


def hours_correction(brain: Brain, wrong: list[str], here: datetime) -> str:
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
            said = label if label in ("today", "tomorrow") else f"on {say_date(day)}"
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
