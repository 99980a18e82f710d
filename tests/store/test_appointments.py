"""Appointments against a real Postgres: the exclusion constraint, codes, reschedule and cancel rules."""

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import psycopg
import pytest

from agent.store import appointments as appts
from agent.store.appointments import (
    AppointmentNotFound,
    NotYourAppointment,
    SlotTaken,
    book,
    busy_intervals,
    cancel,
    find_for_caller,
    normalize_code,
    reschedule,
)
from agent.store.db import StoreUnavailable, open_pool
from agent.store.records import snapshot

BIZ = "bright-smile-dental"
PHONE = "+14155550123"
OTHER_PHONE = "+14155550999"
T0 = datetime(2030, 3, 4, 15, 0, tzinfo=UTC)
NOW = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def _book(pool, start, end, *, business=BIZ, phone=PHONE, resource="default", name="Ana"):
    return await book(pool, business, "Cleaning", name, phone, start, end, resource=resource)


async def test_book_returns_a_readable_confirmation_code(pool):
    call_id = uuid.uuid4()
    appt = await book(pool, BIZ, "Cleaning", "Ana Silva", PHONE, at(0), at(30), call_id)
    assert re.fullmatch(r"[2-9A-HJ-NP-Z]{3}-[2-9A-HJ-NP-Z]{3}", appt.confirmation_code)
    assert (appt.start, appt.end, appt.status, appt.call_id) == (at(0), at(30), "booked", call_id)
    assert (
        normalize_code(appt.confirmation_code.lower().replace("-", " ")) == appt.confirmation_code
    )


async def test_overlap_is_refused_for_the_same_business_and_resource(pool):
    await _book(pool, at(0), at(60))
    with pytest.raises(SlotTaken):
        await _book(pool, at(30), at(90))
    with pytest.raises(SlotTaken):
        await _book(pool, at(-15), at(15))
    # another chair, another business, back-to-back: all fine
    await _book(pool, at(30), at(90), resource="chair-2")
    await _book(pool, at(30), at(90), business="other-biz")
    await _book(pool, at(60), at(90))
    await _book(pool, at(-30), at(0))
    assert await busy_intervals(pool, BIZ, at(-60), at(120)) == [
        (at(-30), at(0)), (at(0), at(60)), (at(60), at(90)),
    ]  # fmt: skip


async def test_cancelled_appointment_frees_its_slot(pool):
    first = await _book(pool, at(0), at(30))
    await cancel(pool, BIZ, first.confirmation_code, PHONE)
    second = await _book(pool, at(0), at(30), name="Bo")
    assert second.status == "booked"
    assert await busy_intervals(pool, BIZ, at(0), at(30)) == [(at(0), at(30))]


async def test_fifty_concurrent_bookings_of_one_slot_yield_exactly_one(db_url):
    pool = await open_pool(db_url, min_size=50, max_size=50, acquire_timeout=10)
    try:
        results = await asyncio.gather(
            *(_book(pool, at(0), at(30), name=f"caller {i}") for i in range(50)),
            return_exceptions=True,
        )
        booked = [r for r in results if isinstance(r, appts.Appointment)]
        taken = [r for r in results if isinstance(r, SlotTaken)]
        assert len(booked) == 1 and len(taken) == 49, results
        rows = (await snapshot(pool, business=BIZ))["appointments"]
        assert len(rows) == 1 and rows[0]["confirmation_code"] == booked[0].confirmation_code
    finally:
        await pool.close()


async def test_code_collision_is_retried(pool, monkeypatch):
    codes = iter(["K7P-4M2", "K7P-4M2", "H3X-9QA"])
    monkeypatch.setattr(appts, "new_confirmation_code", lambda: next(codes))
    first = await _book(pool, at(0), at(30))
    second = await _book(pool, at(30), at(60))
    assert (first.confirmation_code, second.confirmation_code) == ("K7P-4M2", "H3X-9QA")


async def test_invalid_input_is_refused_before_the_database(pool):
    with pytest.raises(ValueError, match="E.164"):
        await book(pool, BIZ, "Cleaning", "Ana", "415-555-0123", at(0), at(30))
    with pytest.raises(ValueError, match="end after"):
        await book(pool, BIZ, "Cleaning", "Ana", PHONE, at(30), at(0))
    with pytest.raises(ValueError, match="aware"):
        await book(pool, BIZ, "Cleaning", "Ana", PHONE, datetime(2030, 1, 1), datetime(2030, 1, 2))


async def test_find_for_caller_lists_upcoming_booked_only(pool):
    past = await book(pool, BIZ, "Cleaning", "Ana", PHONE, NOW - timedelta(days=1),
                      NOW - timedelta(days=1) + timedelta(minutes=30))  # fmt: skip
    later = await _book(pool, at(120), at(150))
    soon = await _book(pool, at(0), at(30))
    gone = await _book(pool, at(60), at(90))
    await cancel(pool, BIZ, gone.confirmation_code, PHONE)
    await _book(pool, at(200), at(230), phone=OTHER_PHONE)

    found = await find_for_caller(pool, BIZ, phone=PHONE, now=NOW)
    assert [a.id for a in found] == [soon.id, later.id]
    assert past.id not in {a.id for a in found}
    by_code = await find_for_caller(pool, BIZ, code=later.confirmation_code.lower(), now=NOW)
    assert [a.id for a in by_code] == [later.id]
    assert await find_for_caller(pool, BIZ, phone=OTHER_PHONE, code=later.confirmation_code,
                                 now=NOW) == []  # fmt: skip
    assert await find_for_caller(pool, "other-biz", phone=PHONE, now=NOW) == []


async def test_reschedule_moves_the_booking_atomically(pool):
    call_id = uuid.uuid4()
    old = await _book(pool, at(0), at(30))
    new = await reschedule(pool, BIZ, old.confirmation_code, at(15), at(45), PHONE, call_id)
    assert (new.start, new.end, new.status, new.rescheduled_from) == (
        at(15),
        at(45),
        "booked",
        old.id,
    )
    assert new.confirmation_code != old.confirmation_code
    rows = {r["id"]: r for r in (await snapshot(pool, business=BIZ))["appointments"]}
    assert rows[str(old.id)]["status"] == "rescheduled"
    assert rows[str(old.id)]["updated_by_call"] == str(call_id)
    assert await busy_intervals(pool, BIZ, at(-60), at(120)) == [(at(15), at(45))]
    # by id works too
    again = await reschedule(pool, BIZ, new.id, at(60), at(90), PHONE)
    assert again.rescheduled_from == new.id


async def test_reschedule_into_a_taken_slot_keeps_the_old_booking(pool):
    mine = await _book(pool, at(0), at(30))
    await _book(pool, at(60), at(90), phone=OTHER_PHONE, name="Bo")
    with pytest.raises(SlotTaken):
        await reschedule(pool, BIZ, mine.confirmation_code, at(75), at(105), PHONE)
    [still] = await find_for_caller(pool, BIZ, phone=PHONE, now=NOW)
    assert (still.id, still.status, still.start) == (mine.id, "booked", at(0))


async def test_reschedule_and_cancel_refuse_another_callers_appointment(pool):
    theirs = await _book(pool, at(0), at(30), phone=OTHER_PHONE)
    with pytest.raises(NotYourAppointment):
        await reschedule(pool, BIZ, theirs.confirmation_code, at(60), at(90), PHONE)
    with pytest.raises(NotYourAppointment):
        await cancel(pool, BIZ, theirs.confirmation_code, PHONE)
    [intact] = await find_for_caller(pool, BIZ, phone=OTHER_PHONE, now=NOW)
    assert intact.status == "booked"


async def test_cancel_then_cancel_again(pool):
    appt = await _book(pool, at(0), at(30))
    call_id = uuid.uuid4()
    cancelled = await cancel(pool, BIZ, appt.confirmation_code, PHONE, call_id)
    assert cancelled.status == "cancelled" and cancelled.updated_by_call == call_id
    with pytest.raises(AppointmentNotFound):
        await cancel(pool, BIZ, appt.confirmation_code, PHONE)
    with pytest.raises(AppointmentNotFound):
        await cancel(pool, "other-biz", "ZZZ-ZZZ", PHONE)
    assert [a["id"] for a in (await snapshot(pool, call_id=call_id))["appointments"]] == [
        str(appt.id)
    ]


async def test_database_checks_back_up_the_code(pool):
    async with pool.connection() as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            await conn.execute(
                "INSERT INTO appointments (business, service, customer_name, customer_phone,"
                " during, confirmation_code) VALUES ('b', 's', 'n', '12345', tstzrange(now(),"
                " now() + interval '1 hour'), 'AAA-AAA')"
            )


async def test_store_unavailable_when_postgres_is_down(db_url, pg_server):
    pool = await open_pool(db_url, min_size=1, max_size=2, acquire_timeout=1)
    try:
        await asyncio.to_thread(pg_server.stop)
        with pytest.raises(StoreUnavailable):
            await _book(pool, at(0), at(30))
        with pytest.raises(StoreUnavailable):
            await busy_intervals(pool, BIZ, at(0), at(30))
        await asyncio.to_thread(pg_server.start)
        # the pool finds its way back without being recreated
        for _ in range(50):
            try:
                appt = await _book(pool, at(0), at(30))
                break
            except StoreUnavailable:
                await asyncio.sleep(0.1)
        assert appt.status == "booked"
    finally:
        await pool.close()


async def test_overlapping_requests_racing_neither_deadlock_nor_double_book(db_url):
    """Callers racing for overlapping (not identical) times: with a plain INSERT two of them could
    each wait on the other's uncommitted row until Postgres aborted one as a deadlock, which reached
    the caller as "the system is down". Each caller must get a booking or SlotTaken, nothing else."""
    pool = await open_pool(db_url, min_size=20, max_size=20, acquire_timeout=10)
    try:
        for round_ in range(5):
            base = 60 * 24 * round_
            wanted = [(at(base + 15 * i), at(base + 15 * i + 45)) for i in range(40)]
            results = await asyncio.gather(
                *(_book(pool, s, e, name=f"caller {i}") for i, (s, e) in enumerate(wanted)),
                return_exceptions=True,
            )
            assert all(isinstance(r, appts.Appointment | SlotTaken) for r in results), [
                r for r in results if not isinstance(r, appts.Appointment | SlotTaken)
            ]
            booked = sorted((r.start, r.end) for r in results if isinstance(r, appts.Appointment))
            assert all(a_end <= b_start for (_, a_end), (b_start, _) in pairwise(booked))
            # every refusal is a real overlap with what was booked
            for r in results:
                if isinstance(r, SlotTaken):
                    assert any(s < r.end and r.start < e for s, e in booked)
            assert await busy_intervals(pool, BIZ, at(base - 60), at(base + 15 * 40 + 60)) == booked
    finally:
        await pool.close()


async def test_reschedule_retries_a_code_collision(pool, monkeypatch):
    codes = iter(["K7P-4M2", "K7P-4M2", "H3X-9QA"])
    monkeypatch.setattr(appts, "new_confirmation_code", lambda: next(codes))
    old = await _book(pool, at(0), at(30))
    new = await reschedule(pool, BIZ, old.confirmation_code, at(60), at(90), PHONE)
    assert (old.confirmation_code, new.confirmation_code) == ("K7P-4M2", "H3X-9QA")
    assert await busy_intervals(pool, BIZ, at(0), at(120)) == [(at(60), at(90))]


async def test_pool_warm_up_books_nothing_and_tolerates_an_empty_database(db_url, pg_server):
    pool = await open_pool(db_url, min_size=3, max_size=3, prepare=appts.warm_up)
    try:
        assert await busy_intervals(pool, "", at(-(10**6)), at(10**6)) == []
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM appointments")
            assert await cur.fetchone() == (0,)
    finally:
        await pool.close()
    # before migrations the warm-up has nothing to warm; the pool still opens and works
    name = f"empty_{uuid.uuid4().hex[:8]}"
    empty = await open_pool(pg_server.create_database(name), min_size=2, max_size=2, prepare=appts.warm_up)
    try:
        async with empty.connection() as conn:
            cur = await conn.execute("SELECT 1")
            assert await cur.fetchone() == (1,)
    finally:
        await empty.close()
        pg_server.drop_database(name)


async def test_connections_the_server_dropped_are_replaced_at_checkout(db_url):
    """The checkout check costs no round trip for a connection used moments ago, yet one whose
    backend the server ended (restart, pg_terminate_backend) never reaches a caller."""
    pool = await open_pool(db_url, min_size=3, max_size=3, acquire_timeout=5)
    try:
        await _book(pool, at(0), at(30))
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as admin:
            cur = await admin.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000))"
                " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert await cur.fetchone() == (3,)
        appt = await _book(pool, at(30), at(60))  # first try: no StoreUnavailable
        assert appt.status == "booked"
    finally:
        await pool.close()
