"""When the business is open and which appointment slots exist: pure functions of a brain and a clock.

Everything is computed in the business's timezone. Slots are laid on the wall clock (9:00, 9:30, ...)
and durations are measured in real elapsed time, so a DST change inside the day cannot stretch a job.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from agent.brain.schema.brain import Brain
from agent.brain.schema.business import Service
from agent.brain.schema.escalation import Department
from agent.brain.schema.fields import END_OF_DAY, WEEKDAYS
from agent.brain.schema.hours import TimeRange, WeeklyHours

UTC = ZoneInfo("UTC")

Hours = list[tuple[time, time]]


def _pairs(ranges: list[TimeRange]) -> Hours:
    return [(r.open, r.close) for r in sorted(ranges, key=lambda r: r.open)]


def opening_hours_on(brain: Brain, day: date) -> Hours:
    """Opening ranges on `day`, closures and special hours applied; [] when closed.

    A range that runs to midnight ends at `time.max` (written "24:00" in the brain file).
    """
    closure = brain.closure_on(day)
    if closure is not None:
        return _pairs(closure.hours or [])
    return _pairs(brain.hours.on_weekday(day.weekday()))


def weekly_hours_on(brain: Brain, weekday: int) -> Hours:
    """The regular ranges for a weekday (0 = Monday), ignoring closures."""
    return _pairs(brain.hours.on_weekday(weekday))


def local(brain: Brain, when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("schedule functions need timezone-aware datetimes")
    return when.astimezone(brain.tz)


def _within(hours: Hours, at: time) -> bool:
    return any(start <= at < end or (end == END_OF_DAY and at >= start) for start, end in hours)


def is_open_at(brain: Brain, when: datetime) -> bool:
    here = local(brain, when)
    return _within(opening_hours_on(brain, here.date()), here.time())


def next_open_day(brain: Brain, after: date) -> date | None:
    """The first day strictly after `after` with opening hours, looking a year ahead."""
    for offset in range(1, 367):
        day = after + timedelta(days=offset)
        if opening_hours_on(brain, day):
            return day
    return None


def department_open_at(brain: Brain, department: Department, when: datetime) -> bool:
    """Whether someone answers at `department`: its own hours, else the business's opening hours.

    A department's own hours are a rota and ignore closures (an on-call line stays staffed on
    holidays); without them, people are there exactly when the business is open.
    """
    if department.hours is None:
        return is_open_at(brain, when)
    here = local(brain, when)
    return _within(_pairs(department.hours.on_weekday(here.weekday())), here.time())


def _at(day: date, clock: time, tz: ZoneInfo) -> datetime | None:
    """The instant the wall clock shows `clock` on `day`, or None if DST skips that time."""
    if clock == END_OF_DAY:
        return datetime.combine(day + timedelta(days=1), time(0), tz)
    wall = datetime.combine(day, clock, tz)
    # a skipped wall time does not survive a round trip through UTC
    round_trip = wall.astimezone(UTC).astimezone(tz)
    if round_trip.replace(tzinfo=None) != wall.replace(tzinfo=None):
        return None
    return wall


def _boundary(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """Like _at, but a skipped opening/closing time moves forward to the first real instant."""
    instant = _at(day, clock, tz)
    if instant is not None:
        return instant
    return datetime.combine(day, clock, tz).astimezone(UTC).astimezone(tz)


def candidate_slots(
    brain: Brain,
    service: Service | str,
    day: date,
    now: datetime,
    busy: list[tuple[datetime, datetime]],
) -> list[datetime]:
    """Start times on `day` where `service` can be booked, earliest first, in the business timezone.

    The grid is every `slot_minutes` on the wall clock from the first aligned time at or after opening;
    a slot must finish by the end of its opening range, start at least `min_notice_minutes` after
    `now`, fall within `max_days_ahead`, and keep `buffer_minutes` clear of every busy interval.
    """
    if isinstance(service, str):
        found = brain.service(service)
        if found is None:
            raise ValueError(f"{brain.business.name} has no service called {service!r}")
        service = found
    if not service.bookable:
        return []
    tz = brain.tz
    here = local(brain, now)
    rules = brain.booking
    if day < here.date() or (day - here.date()).days > rules.max_days_ahead:
        return []
    # aware datetimes sharing a tzinfo add and compare on the wall clock, so all arithmetic is in UTC
    earliest = now.astimezone(UTC) + timedelta(minutes=rules.min_notice_minutes)
    length = timedelta(minutes=service.duration_minutes)
    buffer = timedelta(minutes=rules.buffer_minutes)
    step = rules.slot_minutes
    blocked = [
        (local(brain, a).astimezone(UTC) - buffer, b.astimezone(UTC) + buffer) for a, b in busy
    ]

    slots: list[datetime] = []
    for opens, closes in opening_hours_on(brain, day):
        close_at = _boundary(day, closes, tz).astimezone(UTC)
        minute = opens.hour * 60 + opens.minute
        minute += -minute % step  # first grid point at or after opening
        while minute < 24 * 60:
            wall = _at(day, time(minute // 60, minute % 60), tz)
            minute += step
            if wall is None:
                continue
            start = wall.astimezone(UTC)
            end = start + length
            if end > close_at:
                break
            if start < earliest:
                continue
            if any(start < b_end and b_start < end for b_start, b_end in blocked):
                continue
            slots.append(wall)
    return slots


def slot_problem(brain: Brain, service: Service, start: datetime, now: datetime) -> str | None:
    """Why `start` can't be booked for `service`, as a sentence, or None when it is a valid slot: the
    one rule for a caller's booking and move and an owner's move in the console."""
    start, now = local(brain, start), local(brain, now)
    if start <= now:
        return "That time has already passed."
    notice = timedelta(minutes=brain.booking.min_notice_minutes)
    if start < now + notice:
        return f"We need at least {brain.booking.min_notice_minutes} minutes' notice."
    if start.date() > now.date() + timedelta(days=brain.booking.max_days_ahead):
        return f"We book at most {brain.booking.max_days_ahead} days ahead."
    if start.minute % brain.booking.slot_minutes or start.second or start.microsecond:
        return f"Appointments start on the {brain.booking.slot_minutes}-minute grid."
    end = start + timedelta(minutes=service.duration_minutes)
    fits = any(
        start.time() >= o and (end.time() <= c or c == time(0)) and end.date() == start.date()
        for o, c in opening_hours_on(brain, start.date())
    )
    if not fits:
        return f"That is outside our opening hours ({describe_hours(brain, start.date())})."
    return None


# ---------------------------------------------------------------------------------------------
# hours in words, for the prompt, tool results and grounding corrections


def spoken_time(t: time) -> str:
    """'8 AM', '8:30 AM', '12 PM', 'midnight'."""
    if t == END_OF_DAY or t == time(0):
        return "midnight"
    hour = t.hour % 12 or 12
    suffix = "AM" if t.hour < 12 else "PM"
    return f"{hour} {suffix}" if t.minute == 0 else f"{hour}:{t.minute:02d} {suffix}"


def spoken_ranges(hours: Hours) -> str:
    if not hours:
        return "closed"
    if hours == [(time(0), END_OF_DAY)]:
        return "open 24 hours"
    parts = [f"{spoken_time(a)} to {spoken_time(b)}" for a, b in hours]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def describe_hours(brain: Brain, day: date) -> str:
    """'8 AM to 12 PM and 1 PM to 5 PM', 'closed', 'closed (Christmas)', '7 AM to 12 PM (Christmas Eve)'."""
    hours = opening_hours_on(brain, day)
    text = spoken_ranges(hours)
    closure = brain.closure_on(day)
    return f"{text} ({closure.reason})" if closure is not None else text


def describe_week(brain: Brain, weekly: WeeklyHours | None = None) -> str:
    """Regular hours with runs of equal days merged: 'Monday to Friday 7 AM to 6 PM; Saturday ...'."""
    weekly = weekly or brain.hours
    runs: list[tuple[int, int, str]] = []
    for i in range(7):
        text = spoken_ranges(_pairs(weekly.on_weekday(i)))
        if runs and runs[-1][2] == text and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i, text)
        else:
            runs.append((i, i, text))
    parts = []
    for first, last, text in runs:
        days = WEEKDAYS[first].title()
        if last == first + 1:
            days += f" and {WEEKDAYS[last].title()}"
        elif last > first:
            days += f" to {WEEKDAYS[last].title()}"
        parts.append(f"{days} {text}")
    return "; ".join(parts)
