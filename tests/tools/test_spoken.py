"""What callers say, made exact: days, start times, spoken digits and phone numbers, and how the agent
reads times and days back. Every refusal must be a ToolError the model can act on."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
from livekit.agents import ToolError

from agent.tools.spoken import (
    normalise_phone,
    parse_day,
    parse_start,
    say_day,
    say_time,
    spoken_digits,
)
from tests.tools.conftest import TZ

TODAY = date(2026, 11, 24)  # a Tuesday


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("2026-11-25", date(2026, 11, 25)),
        ("today", TODAY),
        ("  Today ", TODAY),
        ("TOMORROW", date(2026, 11, 25)),
        ("tuesday", TODAY),  # today's weekday is today
        ("next tuesday", date(2026, 12, 1)),  # ... unless they say "next"
        ("monday", date(2026, 11, 30)),
        ("next monday", date(2026, 11, 30)),
        ("Saturday,", date(2026, 11, 28)),
        ("saturday morning", date(2026, 11, 28)),
        ("this coming friday", date(2026, 11, 27)),
        ("sunday", date(2026, 11, 29)),
        ("2026-11-25T09:00", date(2026, 11, 25)),  # a start time names its day
        ("2027-01-01", date(2027, 1, 1)),
        # a past date is returned as said; the tools refuse it with today's date in the sentence
        ("2026-11-20", date(2026, 11, 20)),
    ],
)
def test_parse_day(said: str, expected: date) -> None:
    assert parse_day(said, TODAY) == expected


@pytest.mark.parametrize(
    ("said", "hint"),
    [
        ("", "I need a day"),
        ("   ", "I need a day"),
        ("2026-02-30", "could not read the day '2026-02-30'"),
        ("2026-13-01", "could not read the day"),
        ("tomorrow morning", "could not read the day 'tomorrow morning'"),
        ("the 25th", "could not read the day"),
        ("next week", "could not read the day"),
        ("25:99", "could not read the day"),
        ("'; DROP TABLE appointments; --", "could not read the day"),
    ],
)
def test_parse_day_refuses_with_a_usable_sentence(said: str, hint: str) -> None:
    with pytest.raises(ToolError) as err:
        parse_day(said, TODAY)
    assert hint in err.value.message
    if said.strip():
        # the model is told the format and what today is, so it can resolve the day itself
        assert "YYYY-MM-DD" in err.value.message
        assert "2026-11-24" in err.value.message and "Tuesday" in err.value.message


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("2026-11-25T09:00", datetime(2026, 11, 25, 9, 0, tzinfo=TZ)),
        ("2026-11-25 09:00", datetime(2026, 11, 25, 9, 0, tzinfo=TZ)),
        (" 2026-11-25T14:30 ", datetime(2026, 11, 25, 14, 30, tzinfo=TZ)),
        ("2026-11-25T17:00Z", datetime(2026, 11, 25, 9, 0, tzinfo=TZ)),
        ("2026-11-25T09:00-05:00", datetime(2026, 11, 25, 6, 0, tzinfo=TZ)),
        ("2026-11-25", datetime(2026, 11, 25, 0, 0, tzinfo=TZ)),
    ],
)
def test_parse_start(said: str, expected: datetime) -> None:
    got = parse_start(said, TZ)
    assert got == expected
    assert got.tzinfo is not None and got.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "said",
    ["", "   ", "25:99", "2026-11-25T25:99", "2026-02-30T09:00", "tomorrow at 9", "9am", "+1",
     "2026-11-25T09:00+25:00", "-1", "NaN"],
)  # fmt: skip
def test_parse_start_refuses_with_a_usable_sentence(said: str) -> None:
    with pytest.raises(ToolError) as err:
        parse_start(said, TZ)
    assert "YYYY-MM-DDTHH:MM" in err.value.message


@pytest.mark.parametrize("said", ["0001-01-01T00:00+14:00", "9999-12-31T23:59-12:00"])
def test_parse_start_refuses_times_at_the_edge_of_the_calendar(said: str) -> None:
    with pytest.raises(ToolError):
        parse_start(said, TZ)


@pytest.mark.parametrize(
    ("said", "digits"),
    [
        ("five oh three", "503"),
        ("Five OH Three", "503"),
        ("double five", "55"),
        ("triple two", "222"),
        ("double oh seven", "007"),
        ("o", "0"),
        ("zero one two three four five six seven eight nine", "0123456789"),
        ("503-555-0123", "5035550123"),
        ("+1 503", "+1503"),
        ("five oh three, five double five, oh one two three", "5035550123"),
        ("double", ""),  # a repeat with nothing to repeat
        ("double hello five", "5"),  # a repeat does not survive an unrelated word
        ("call someone", ""),  # 'one' inside a word is not a digit
        ("", ""),
        # Spanish and French digits; "un", "une", "una" are a 1 only among digits, or before them
        ("cinco cero tres, cinco cinco cinco", "503555"),
        ("uno dos, nueve ocho siete", "12987"),
        ("cinq zéro trois, zéro un huit sept", "5030187"),
        ("j'ai un numéro, c'est deux", "2"),
        ("c'est un 06 12 34 56 78", "0612345678"),
        ("una casa", ""),
        # a French number that opens with "un", or says it twice: each is a 1 (recorded fr_CA callers'
        # numbers lost them, and a whole number waited the 3 s hold as if unfinished)
        ("un neuf huit, trois quatre quatre", "198344"),
        ("quatre deux zéro, un un neuf", "420119"),
        ("oui, un cinq un quatre", "1514"),
        ("c'est un zéro six, douze", "0612"),
        ("un instant", ""),
        # tens and teens, as numbers are said in pairs in France or the last four as two pairs in the US
        ("five five five, twenty-one fifty", "5552150"),
        ("twenty oh five", "2005"),
        ("zéro six, douze, trente-quatre, cinquante-six, soixante-dix-huit", "0612345678"),
        ("zéro un, quatre-vingt-dix-sept, soixante et onze, quatre-vingts, vingt et un", "0197718021"),
        ("dix-neuf, dix", "1910"),
        ("cincuenta y cinco, veintidós, dieciséis", "552216"),
        ("noventa y", "90"),
        ("once I get home", ""),  # the Spanish 11 is left out: an English word in any sentence
    ],
)
def test_spoken_digits(said: str, digits: str) -> None:
    assert spoken_digits(said) == digits


@pytest.mark.parametrize(
    ("said", "region", "e164"),
    [
        ("+15035550123", "US", "+15035550123"),
        ("(503) 555-0123", "US", "+15035550123"),
        ("503 555 0123", "US", "+15035550123"),
        ("1 503 555 0123", "US", "+15035550123"),
        ("five oh three, five five five, oh one two three", "US", "+15035550123"),
        ("five oh three five double five oh one two three", "US", "+15035550123"),
        ("５０３５５５０１２３", "US", "+15035550123"),  # full-width digits from a transcript
        ("+44 20 7123 4567", "US", "+442071234567"),  # an explicit country code wins
        ("020 7123 4567", "GB", "+442071234567"),  # the business's region fills it in
    ],
)
def test_normalise_phone(said: str, region: str, e164: str) -> None:
    assert normalise_phone(said, region) == e164


@pytest.mark.parametrize(
    ("said", "hint"),
    [
        ("", "I need the caller's phone number"),
        ("   ", "I need the caller's phone number"),
        ("555-0123", "I got 7 digits (5 5 5 0 1 2 3)"),
        ("+1", "not valid"),
        ("hello", "I got 0 digits (hello)"),
        ("503 555 01234", "I got 11 digits"),
        ("five five five", "I got 3 digits (5 5 5)"),
        ("1" * 300, "not valid"),
        ("'; DROP TABLE appointments; --", "not valid"),
    ],
)
def test_normalise_phone_refuses_with_what_it_heard(said: str, hint: str) -> None:
    with pytest.raises(ToolError) as err:
        normalise_phone(said, "US")
    assert hint in err.value.message
    if said.strip():
        assert "digit by digit" in err.value.message


@pytest.mark.parametrize(
    ("at", "spoken"),
    [
        (time(9, 30), "9:30 AM"),
        (time(13, 0), "1 PM"),
        (time(0, 0), "12 AM"),
        (time(12, 0), "12 PM"),
        (time(12, 5), "12:05 PM"),
        (time(23, 59), "11:59 PM"),
        (datetime(2026, 11, 25, 7, 0, tzinfo=TZ), "7 AM"),
    ],
)
def test_say_time(at: time | datetime, spoken: str) -> None:
    assert say_time(at) == spoken


@pytest.mark.parametrize(
    ("day", "spoken"),
    [
        (TODAY, "today"),
        (date(2026, 11, 25), "tomorrow"),
        (date(2026, 11, 28), "Saturday November 28"),
        (date(2026, 11, 23), "Monday November 23"),  # yesterday is read as a date
        (date(2027, 1, 1), "Friday January 1"),
    ],
)
def test_say_day(day: date, spoken: str) -> None:
    assert say_day(day, TODAY) == spoken
