"""The brain's `hours` and `closures`: weekly opening hours as time ranges, and dated closures."""

from __future__ import annotations

from datetime import date, time

from pydantic import ValidationInfo, field_validator, model_validator

from agent.brain.schema.fields import (
    END_OF_DAY,
    WEEKDAYS,
    ClockTime,
    Day,
    FieldProblems,
    Loc,
    Model,
    Text,
    hhmm,
)


class TimeRange(Model):
    open: ClockTime
    close: ClockTime

    @field_validator("open")
    @classmethod
    def _open_not_midnight_end(cls, v: time) -> time:
        if v == END_OF_DAY:
            raise ValueError("24:00 can only close a range")
        return v

    @field_validator("close")
    @classmethod
    def _close_after_open(cls, v: time, info: ValidationInfo) -> time:
        opened = info.data.get("open")
        if opened is not None and v <= opened:
            raise ValueError(f"close {hhmm(v)} must be after open {hhmm(opened)}")
        return v

    def __str__(self) -> str:
        return f"{hhmm(self.open)}-{hhmm(self.close)}"


def _overlaps(ranges: list[TimeRange]) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    for i, r in enumerate(ranges):
        for earlier in ranges[:i]:
            if r.open < earlier.close and earlier.open < r.close:
                problems.append(((i,), f"overlaps {earlier}"))
                break
    return problems


DayHours = list[TimeRange]


class WeeklyHours(Model):
    """Opening ranges per weekday; an empty list means closed all day."""

    monday: DayHours
    tuesday: DayHours
    wednesday: DayHours
    thursday: DayHours
    friday: DayHours
    saturday: DayHours
    sunday: DayHours

    @model_validator(mode="after")
    def _no_overlaps(self) -> WeeklyHours:
        problems = [
            ((day, *loc), reason)
            for day in WEEKDAYS
            for loc, reason in _overlaps(getattr(self, day))
        ]
        if problems:
            raise FieldProblems(problems)
        return self

    def on_weekday(self, weekday: int) -> list[TimeRange]:
        """Ranges for `date.weekday()` (0 = Monday), in time order."""
        return sorted(getattr(self, WEEKDAYS[weekday]), key=lambda r: r.open)


class Closure(Model):
    date: Day
    end_date: Day | None = None
    reason: Text
    # given: special hours on these days instead of being closed
    hours: DayHours | None = None

    @field_validator("end_date")
    @classmethod
    def _end_after_start(cls, v: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("date")
        if v is not None and start is not None and v < start:
            raise ValueError(f"end_date {v} is before date {start}")
        return v

    @model_validator(mode="after")
    def _special_hours_do_not_overlap(self) -> Closure:
        problems = [(("hours", *loc), reason) for loc, reason in _overlaps(self.hours or [])]
        if problems:
            raise FieldProblems(problems)
        return self

    @property
    def last_day(self) -> date:
        return self.end_date or self.date

    def covers(self, day: date) -> bool:
        return self.date <= day <= self.last_day
