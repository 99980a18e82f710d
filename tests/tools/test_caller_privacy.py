"""A caller reaches only their own bookings. A number the caller states is a claim, not an identity:
every tool that reads or changes a booking is tried with another person's number, with and without
that person's code, with the code of a different booking, with the caller ID hidden and with a caller
ID the carrier found forged. Graded on the calendar in Postgres and on everything each tool returned
(what the model could read out), never on the model's words."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from livekit.agents import ToolError
from psycopg_pool import AsyncConnectionPool

from agent.brain import Brain
from agent.call import CallContext
from agent.tools import cancel_appointment, find_my_appointments, reschedule_appointment
from simulator.scenario import SeedAppointment
from simulator.session import ScenarioStores
from tests.tools.conftest import pinned_call, run_tool

ME = "+15035550166"  # the caller ID of the call under test
THEM = "+15035550111"  # someone else, whose number the caller says aloud
THEIR_NAME, THEIR_CODE = "Lee Park", "PQR-7TW"
MY_NAME, MY_CODE = "Pat Caller", "MNE-234"
FREE_SLOT = "2026-12-01T10:00"  # a Tuesday morning, free and bookable from the pinned clock

SEEDS = [
    SeedAppointment(service="Plumbing inspection", start=datetime(2026, 11, 30, 13, 0),
                    customer_name=THEIR_NAME, customer_phone=THEM, confirmation_code=THEIR_CODE),
    SeedAppointment(service="Drain cleaning", start=datetime(2026, 11, 25, 9, 0),
                    customer_name=MY_NAME, customer_phone=ME, confirmation_code=MY_CODE),
]  # fmt: skip

# what must never reach the model for a caller who has not proven THEM: their name, their code (in
# any spelling), their service or their time
THEIR_DETAILS = ["Lee", "Park", "PQR", "7TW", "P Q R", "inspection", "1 PM", "Monday"]


@pytest.fixture
async def desk(
    plumbing: Brain, tools_pool: AsyncConnectionPool
) -> AsyncIterator[tuple[Brain, AsyncConnectionPool]]:
    seeder = pinned_call(plumbing, pool=tools_pool)
    await ScenarioStores(pool=tools_pool, journal=None).seed(seeder, SEEDS)  # type: ignore[arg-type]
    yield plumbing, tools_pool


def _call(desk: tuple[Brain, AsyncConnectionPool], caller: str | None = ME, **fields: Any) -> CallContext:
    brain, pool = desk
    return pinned_call(brain, caller_number=caller, pool=pool, **fields)


async def _run(call: CallContext, tool: Any, **arguments: Any) -> tuple[Any, str]:
    """(decoded answer or None when refused, every word the model got back)."""
    try:
        raw = await run_tool(tool, call, **arguments)
    except ToolError as e:
        return None, e.message
    return json.loads(raw), raw


def _assert_nothing_of_theirs(text: str) -> None:
    leaked = [w for w in THEIR_DETAILS if w.lower() in text.lower()]
    assert not leaked, f"the tool handed the model {leaked}: {text}"


async def _calendar(pool: AsyncConnectionPool) -> dict[str, tuple[str, str]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT confirmation_code, status, to_char(lower(during) AT TIME ZONE"
            " 'America/Los_Angeles', 'YYYY-MM-DD\"T\"HH24:MI') FROM appointments"
            " WHERE customer_phone = %s",
            (THEM,),
        )
        return {code: (status, start) for code, status, start in await cur.fetchall()}


THEIRS_UNTOUCHED = {THEIR_CODE: ("booked", "2026-11-30T13:00")}


# --- finding ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("said", [THEM, "503 555 0111", "five oh three five five five oh one one one"])
async def test_a_stated_number_gets_not_even_whether_it_has_bookings(desk: Any, said: str) -> None:
    """The reported hole: 'what's booked under 503 555 0111?' used to return Lee's name, service,
    time and confirmation code; and then how many bookings it had, which told anyone whether any number
    was booked here. A number with bookings and one without get the same answer."""
    call = _call(desk)
    out, text = await _run(call, find_my_appointments, phone=said)
    assert out == {"details": out["details"], "next": out["next"]} and out["details"].startswith("withheld")
    assert "confirmation code" in out["next"]
    _assert_nothing_of_theirs(text)
    nobodys, _ = await _run(call, find_my_appointments, phone="503 555 0199")
    assert nobodys == out
    assert call.failed_proofs == 0  # nothing was learnt, so nothing counts against the call


async def test_a_stated_number_with_its_code_gets_that_booking(desk: Any) -> None:
    out, _ = await _run(_call(desk), find_my_appointments, phone="503 555 0111", confirmation_code="pqr 7tw")
    assert [(a["confirmation_code"], a["name"], a["time"]) for a in out] == [(THEIR_CODE, THEIR_NAME, "1 PM")]


@pytest.mark.parametrize(
    ("phone", "code"),
    [
        (THEM, MY_CODE),  # the code of a different booking
        ("", THEIR_CODE),  # their code from my phone: the number does not match
        (ME, THEIR_CODE),
        (THEM, "ZZZ-999"),  # a code that does not exist
    ],
)
async def test_a_code_that_does_not_go_with_the_number_reveals_nothing(desk: Any, phone: str, code: str) -> None:
    out, text = await _run(_call(desk), find_my_appointments, phone=phone, confirmation_code=code)
    assert out is None
    _assert_nothing_of_theirs(text)
    assert MY_NAME not in text and MY_CODE not in text


async def test_caller_id_shows_only_the_callers_own_bookings(desk: Any) -> None:
    out, text = await _run(_call(desk), find_my_appointments)
    assert [(a["confirmation_code"], a["name"]) for a in out] == [(MY_CODE, MY_NAME)]
    _assert_nothing_of_theirs(text)


async def test_hidden_caller_id_proves_nothing(desk: Any) -> None:
    call = _call(desk, caller=None)
    out, text = await _run(call, find_my_appointments)
    assert out is None and "confirmation code" in text
    out, text = await _run(call, find_my_appointments, phone=THEM)
    assert set(out) == {"details", "next"}
    _assert_nothing_of_theirs(text)


async def test_a_caller_id_the_carrier_found_forged_is_only_a_claim(desk: Any) -> None:
    forged = _call(desk, caller=THEM, caller_verstat="TN-Validation-Failed")
    out, text = await _run(forged, find_my_appointments)
    assert set(out) == {"details", "next"}
    _assert_nothing_of_theirs(text)
    # the carrier's verdict "passed" (or no verdict at all) leaves caller ID as proof of the line
    for verstat in ("TN-Validation-Passed-A", None):
        out, _ = await _run(_call(desk, caller=THEM, caller_verstat=verstat), find_my_appointments)
        assert [a["name"] for a in out] == [THEIR_NAME]


async def test_a_number_proven_on_the_call_shows_its_bookings(desk: Any) -> None:
    call = _call(desk, caller=None)
    call.proven_numbers.add(THEM)
    out, _ = await _run(call, find_my_appointments, phone="503 555 0111")
    assert [a["confirmation_code"] for a in out] == [THEIR_CODE]


async def test_guessing_codes_stops_after_three_misses(desk: Any) -> None:
    """32^6 codes cannot be tried on one call: after three misses even the right one is refused."""
    call = _call(desk)
    for guess in ("AAA-AAA", "BBB-BBB", "CCC-CCC"):
        assert (await _run(call, find_my_appointments, phone=THEM, confirmation_code=guess))[0] is None
    out, text = await _run(call, find_my_appointments, phone=THEM, confirmation_code=THEIR_CODE)
    assert out is None and "Too many" in text
    _assert_nothing_of_theirs(text)
    out, text = await _run(call, cancel_appointment, phone=THEM, confirmation_code=THEIR_CODE)
    assert out is None and "Too many" in text
    assert await _calendar(desk[1]) == THEIRS_UNTOUCHED


# --- changing and cancelling ----------------------------------------------------------------------------
CHANGES = [
    (cancel_appointment, {}),
    (reschedule_appointment, {"new_start": FREE_SLOT}),
]


@pytest.mark.parametrize(("tool", "extra"), CHANGES, ids=["cancel", "reschedule"])
@pytest.mark.parametrize(
    ("caller", "phone", "code"),
    [
        (ME, "", THEIR_CODE),  # their code, my caller ID
        (ME, ME, THEIR_CODE),
        (ME, THEM, MY_CODE),  # their number, the code of my own booking
        (ME, THEM, "ZZZ-999"),
        (None, "", THEIR_CODE),  # caller ID hidden: the code alone is not enough
        (None, ME, THEIR_CODE),
    ],
    ids=["their-code", "their-code-my-number", "their-number-my-code", "their-number-no-such-code",
         "hidden-code-only", "hidden-wrong-number"],
)  # fmt: skip
async def test_another_persons_booking_cannot_be_changed(
    desk: Any, tool: Any, extra: dict[str, str], caller: str | None, phone: str, code: str
) -> None:
    out, text = await _run(_call(desk, caller=caller), tool, confirmation_code=code, phone=phone, **extra)
    assert out is None
    _assert_nothing_of_theirs(text)
    assert await _calendar(desk[1]) == THEIRS_UNTOUCHED


async def test_unknown_code_and_someone_elses_code_are_refused_alike(desk: Any) -> None:
    """A refusal must not tell a guesser that the code they tried exists."""
    refusals = set()
    for code in (THEIR_CODE, "ZZZ-999"):
        for tool, extra in CHANGES:
            refusals.add((await _run(_call(desk), tool, confirmation_code=code, **extra))[1])
        refusals.add((await _run(_call(desk), find_my_appointments, confirmation_code=code))[1])
    assert len(refusals) == 1, refusals


@pytest.mark.parametrize(("tool", "extra"), CHANGES, ids=["cancel", "reschedule"])
async def test_the_code_and_the_booked_number_together_are_enough(
    desk: Any, tool: Any, extra: dict[str, str]
) -> None:
    """Someone calling from another phone, holding the code and the number it was booked under."""
    out, _ = await _run(_call(desk), tool, confirmation_code="P Q R 7 T W", phone="503-555-0111", **extra)
    assert out is not None
    after = await _calendar(desk[1])
    if tool is cancel_appointment:
        assert after == {THEIR_CODE: ("cancelled", "2026-11-30T13:00")}
    else:
        assert after[THEIR_CODE] == ("rescheduled", "2026-11-30T13:00")
        assert after[out["confirmation_code"]] == ("booked", FREE_SLOT)
