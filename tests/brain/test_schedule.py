"""Opening hours, closures, the booking slot grid and DST days, against the shipped brains."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from agent.brain import Brain, load_brain
from agent.brain.schedule import (
    candidate_slots,
    department_open_at,
    describe_hours,
    describe_week,
    is_open_at,
    next_open_day,
    opening_hours_on,
)
from agent.brain.schema.fields import END_OF_DAY

BRAINS = Path(__file__).resolve().parents[2] / "brains"
PDX = ZoneInfo("America/Los_Angeles")
CHI = ZoneInfo("America/Chicago")


@pytest.fixture(scope="module")
def plumbing() -> Brain:
    return load_brain(BRAINS / "plumbing.yaml")


@pytest.fixture(scope="module")
def dental() -> Brain:
    return load_brain(BRAINS / "dental.yaml")


def with_changes(brain_file: str, **sections: Any) -> Brain:
    data = copy.deepcopy(yaml.safe_load((BRAINS / brain_file).read_text()))
    data.update(sections)
    return Brain.model_validate(data)


def test_opening_hours_weekly_and_closures(plumbing: Brain, dental: Brain) -> None:
    assert opening_hours_on(plumbing, date(2026, 3, 2)) == [(time(7), time(18))]  # Monday
    assert opening_hours_on(plumbing, date(2026, 3, 7)) == [(time(8), time(12))]  # Saturday
    assert opening_hours_on(plumbing, date(2026, 3, 8)) == []  # Sunday
    assert opening_hours_on(plumbing, date(2026, 12, 25)) == []  # Christmas, a Friday
    assert opening_hours_on(plumbing, date(2026, 12, 24)) == [(time(7), time(12))]  # special hours
    assert opening_hours_on(dental, date(2026, 3, 2)) == [(time(8), time(12)), (time(13), time(17))]
    assert opening_hours_on(dental, date(2026, 11, 27)) == []  # second day of a two-day closure


def test_is_open_at_uses_business_timezone(dental: Brain) -> None:
    # 14:30 UTC on Monday 2 March is 08:30 in Chicago (CST)
    assert is_open_at(dental, datetime(2026, 3, 2, 14, 30, tzinfo=UTC))
    assert not is_open_at(dental, datetime(2026, 3, 2, 12, 30, tzinfo=CHI))  # lunch
    assert is_open_at(dental, datetime(2026, 3, 2, 13, 0, tzinfo=CHI))  # open is inclusive
    assert not is_open_at(dental, datetime(2026, 3, 2, 17, 0, tzinfo=CHI))  # close is exclusive
    assert not is_open_at(dental, datetime(2026, 3, 6, 13, 30, tzinfo=CHI))  # Friday afternoon
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open_at(dental, datetime(2026, 3, 2, 9, 0))


def test_next_open_day(plumbing: Brain, dental: Brain) -> None:
    assert next_open_day(plumbing, date(2026, 12, 24)) == date(2026, 12, 26)  # skips Christmas
    assert next_open_day(plumbing, date(2026, 12, 26)) == date(2026, 12, 28)  # skips Sunday
    assert next_open_day(dental, date(2026, 12, 23)) == date(2026, 12, 28)  # closure then weekend
    assert next_open_day(dental, date(2026, 12, 30)) == date(2026, 12, 31)  # special short day


def test_a_department_answers_in_its_own_hours_else_the_business_hours(plumbing: Brain, dental: Brain) -> None:
    on_call, billing = plumbing.escalation.destinations
    # the plumber's on-call rota covers nights, Sundays and holidays
    assert department_open_at(plumbing, on_call, datetime(2026, 3, 8, 3, 0, tzinfo=PDX))
    assert department_open_at(plumbing, on_call, datetime(2026, 12, 25, 23, 59, tzinfo=PDX))
    # billing keeps office hours, weekdays 8 to 5
    assert department_open_at(plumbing, billing, datetime(2026, 3, 2, 8, 0, tzinfo=PDX))
    assert not department_open_at(plumbing, billing, datetime(2026, 3, 2, 17, 0, tzinfo=PDX))
    assert not department_open_at(plumbing, billing, datetime(2026, 3, 7, 10, 0, tzinfo=PDX))
    # the dental office's one team has no rota: people are there when it is open
    [team] = dental.escalation.destinations
    assert department_open_at(dental, team, datetime(2026, 3, 2, 9, 0, tzinfo=CHI))
    assert not department_open_at(dental, team, datetime(2026, 3, 6, 14, 0, tzinfo=CHI))
    assert not department_open_at(dental, team, datetime(2026, 12, 24, 9, 0, tzinfo=CHI))


def test_describe_hours(plumbing: Brain, dental: Brain) -> None:
    assert describe_hours(dental, date(2026, 3, 2)) == "8 AM to 12 PM and 1 PM to 5 PM"
    assert describe_hours(dental, date(2026, 12, 25)) == "closed (Christmas)"
    assert describe_hours(dental, date(2026, 3, 7)) == "closed"
    assert describe_hours(plumbing, date(2026, 12, 24)) == "7 AM to 12 PM (Christmas Eve)"
    assert (
        describe_week(plumbing)
        == "Monday to Friday 7 AM to 6 PM; Saturday 8 AM to 12 PM; Sunday closed"
    )
    assert (
        describe_week(plumbing, plumbing.escalation.departments[0].hours)
        == "Monday to Sunday open 24 hours"
    )


def local_times(slots: list[datetime]) -> list[str]:
    return [s.strftime("%H:%M") for s in slots]


def test_slot_grid_fits_service_before_each_close(dental: Brain) -> None:
    now = datetime(2026, 2, 27, 9, 0, tzinfo=CHI)
    slots = candidate_slots(dental, dental.service("cleaning"), date(2026, 3, 2), now, [])
    times = local_times(slots)
    # 60-minute cleaning on a 15-minute grid, finishing by 12:00 and by 17:00
    assert times[0] == "08:00" and "11:00" in times and "11:15" not in times
    assert "12:00" not in times and "13:00" in times and times[-1] == "16:00"
    assert len(times) == 26
    assert all(s.tzinfo is not None and s.utcoffset() == timedelta(hours=-6) for s in slots)


def test_slot_grid_aligns_to_slot_minutes(plumbing: Brain) -> None:
    odd = with_changes(
        "plumbing.yaml",
        hours={
            **yaml.safe_load((BRAINS / "plumbing.yaml").read_text())["hours"],
            "monday": [{"open": "07:10", "close": "10:00"}],
        },
    )
    now = datetime(2026, 2, 27, 9, 0, tzinfo=PDX)
    assert local_times(candidate_slots(odd, "drain cleaning", date(2026, 3, 2), now, [])) == [
        "07:30",
        "08:00",
        "08:30",
        "09:00",
    ]


def test_min_notice_and_max_days_ahead(dental: Brain) -> None:
    monday = date(2026, 3, 2)
    now = datetime(2026, 3, 2, 9, 10, tzinfo=CHI)  # 240 minutes' notice: nothing before 13:10
    assert local_times(candidate_slots(dental, "cleaning", monday, now, []))[0] == "13:15"
    assert candidate_slots(dental, "cleaning", monday - timedelta(days=1), now, []) == []  # past
    assert candidate_slots(
        dental, "cleaning", monday + timedelta(days=60), now, []
    )  # last day allowed
    assert candidate_slots(dental, "cleaning", monday + timedelta(days=61), now, []) == []
    assert (
        candidate_slots(
            dental, "cleaning", date(2026, 12, 24), datetime(2026, 12, 1, tzinfo=CHI), []
        )
        == []
    )


def test_busy_intervals_and_buffer(plumbing: Brain) -> None:
    monday = date(2026, 3, 2)
    now = datetime(2026, 2, 27, 9, 0, tzinfo=PDX)
    busy = [(datetime(2026, 3, 2, 10, 0, tzinfo=PDX), datetime(2026, 3, 2, 11, 0, tzinfo=PDX))]
    times = local_times(candidate_slots(plumbing, "drain cleaning", monday, now, busy))
    # 30 minutes' buffer each side of 10:00-11:00 blocks 9:30-11:30 for a 60-minute job
    assert "08:30" in times and "11:30" in times
    for blocked in ("09:00", "09:30", "10:00", "10:30", "11:00"):
        assert blocked not in times
    # a busy interval given in UTC is the same instant
    busy_utc = [(a.astimezone(UTC), b.astimezone(UTC)) for a, b in busy]
    assert local_times(candidate_slots(plumbing, "drain cleaning", monday, now, busy_utc)) == times


def test_unbookable_and_unknown_services(plumbing: Brain) -> None:
    now = datetime(2026, 2, 27, 9, 0, tzinfo=PDX)
    with pytest.raises(ValueError, match="no service called"):
        candidate_slots(plumbing, "roof repair", date(2026, 3, 2), now, [])
    service = plumbing.services[0].model_copy(update={"bookable": False})
    assert candidate_slots(plumbing, service, date(2026, 3, 2), now, []) == []


def sunday_brain(hours: list[dict[str, str]]) -> Brain:
    week = yaml.safe_load((BRAINS / "plumbing.yaml").read_text())["hours"]
    return with_changes("plumbing.yaml", hours={**week, "sunday": hours})


def test_spring_forward_skips_missing_times_and_counts_real_minutes() -> None:
    brain = sunday_brain([{"open": "01:00", "close": "04:00"}])
    day = date(2026, 3, 8)  # 02:00 PST jumps to 03:00 PDT
    now = datetime(2026, 3, 1, 9, 0, tzinfo=PDX)
    slots = candidate_slots(brain, "drain cleaning", day, now, [])
    assert local_times(slots) == ["01:00", "01:30", "03:00"]  # no 02:00 or 02:30 that day
    assert [s.utcoffset() for s in slots] == [
        timedelta(hours=-8),
        timedelta(hours=-8),
        timedelta(hours=-7),
    ]
    # 01:00 PST plus one real hour is 03:00 PDT (aware datetimes add on the wall clock, so via UTC)
    assert slots[0].astimezone(UTC) + timedelta(minutes=60) == datetime(
        2026, 3, 8, 3, 0, tzinfo=PDX
    )
    assert is_open_at(brain, datetime(2026, 3, 8, 10, 30, tzinfo=UTC))  # 03:30 PDT


def test_fall_back_day_has_an_extra_hour() -> None:
    brain = sunday_brain([{"open": "00:00", "close": "03:00"}])
    day = date(2026, 11, 1)  # 02:00 PDT falls back to 01:00 PST
    now = datetime(2026, 10, 25, 9, 0, tzinfo=PDX)
    slots = candidate_slots(brain, "drain cleaning", day, now, [])
    assert local_times(slots) == ["00:00", "00:30", "01:00", "01:30", "02:00"]
    assert len({s.astimezone(UTC) for s in slots}) == 5
    assert slots[-1].astimezone(UTC) + timedelta(minutes=60) == datetime(
        2026, 11, 1, 3, 0, tzinfo=PDX
    )
    # the first 01:00 is daylight time, and a job starting then ends at the second 01:00
    assert slots[2].utcoffset() == timedelta(hours=-7)


def test_open_until_midnight() -> None:
    brain = sunday_brain([{"open": "20:00", "close": "24:00"}])
    assert opening_hours_on(brain, date(2026, 3, 15)) == [(time(20), END_OF_DAY)]
    assert is_open_at(brain, datetime(2026, 3, 15, 23, 59, tzinfo=PDX))
    assert not is_open_at(brain, datetime(2026, 3, 16, 0, 0, tzinfo=PDX))  # Monday, before 7
    now = datetime(2026, 3, 10, tzinfo=PDX)
    assert (
        local_times(candidate_slots(brain, "drain cleaning", date(2026, 3, 15), now, []))[-1]
        == "23:00"
    )
    assert describe_hours(brain, date(2026, 3, 15)) == "8 PM to midnight"


def test_busy_interval_across_fall_back_compares_real_instants() -> None:
    week = yaml.safe_load((BRAINS / "plumbing.yaml").read_text())["hours"]
    brain = with_changes(
        "plumbing.yaml",
        hours={**week, "sunday": [{"open": "00:00", "close": "03:00"}]},
        booking={
            "slot_minutes": 30,
            "min_notice_minutes": 0,
            "max_days_ahead": 30,
            "buffer_minutes": 0,
        },
    )
    now = datetime(2026, 10, 25, 9, 0, tzinfo=PDX)
    # busy during the second 01:00-02:00 (PST); the job starting at the first 01:00 (PDT) ends
    # exactly when it begins, though on the wall clock the two look identical
    second_one_am = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    busy = [(second_one_am, second_one_am + timedelta(hours=1))]
    slots = candidate_slots(brain, "drain cleaning", date(2026, 11, 1), now, busy)
    assert [s.astimezone(UTC).strftime("%H:%M") for s in slots] == [
        "07:00",
        "07:30",
        "08:00",
        "10:00",
    ]
