"""The owner's Appointments, Leads and Brain pages, as Postgres sees what they do: a cancel frees the
slot, a move onto a taken slot or outside opening hours is refused with a sentence and changes
nothing, a lead marked contacted records who and when, and another owner's rows are a 404."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from agent.brain import load_brain, schedule
from agent.store import appointments as store
from agent.store.db import open_pool
from tests.web.conftest import ROOT, csrf_of, log_in
from tests.web.test_console import DENTAL, PLUMBING
from web.app import ConsoleConfig, create_app

PLUMBING_BRAIN = load_brain(ROOT / "brains/plumbing.yaml")


@pytest.fixture
def console_config(db_url: str) -> ConsoleConfig:
    return ConsoleConfig(db_url, brain_path=ROOT / "brains")


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = await open_pool(db_url, min_size=1, max_size=2)
    yield pool
    await pool.close()


def open_weekday(brain_path: Path = ROOT / "brains/plumbing.yaml") -> date:
    """The first day, two or more days from now, with the shop's full weekday hours (7 to 6): far enough
    for the booking notice, near enough for `max_days_ahead`, never a holiday."""
    brain = load_brain(brain_path)
    day = datetime.now(brain.tz).date() + timedelta(days=2)
    while schedule.opening_hours_on(brain, day) != [(time(7), time(18))]:
        day += timedelta(days=1)
    return day


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), PLUMBING_BRAIN.tz)


async def book(pool: AsyncConnectionPool, start: datetime, name: str, *, business: str = PLUMBING,
               phone: str = "+15035550142") -> store.Appointment:  # fmt: skip
    """A drain cleaning booked as the tool books it: an hour and the shop's 30-minute buffer."""
    return await store.book(pool, business, "Drain cleaning", name, phone, start, start + timedelta(minutes=90))


def rows(db_url: str) -> list[tuple[str, str, datetime]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT customer_name, status, lower(during) FROM appointments ORDER BY created_at, lower(during)"
        ).fetchall()


async def test_an_owner_cancels_an_appointment_and_the_slot_is_free_again(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str, pool: AsyncConnectionPool
) -> None:
    day = open_weekday()
    dana = await book(pool, at(day, 10), "Dana Whitfield")
    add_user("ann@rosecity.example", PLUMBING)
    await log_in(console, "ann@rosecity.example")

    week = await console.get("/appointments", params={"week": day.isoformat()})
    assert week.status_code == 200 and "Dana Whitfield" in week.text and dana.confirmation_code in week.text
    done = await console.post(f"/appointments/{dana.id}/cancel", data={"csrf_token": csrf_of(week.text)})
    assert done.status_code == 303
    assert rows(db_url) == [("Dana Whitfield", "cancelled", at(day, 10))]
    assert await store.busy_intervals(pool, PLUMBING, at(day, 0), at(day, 23)) == []
    again = await book(pool, at(day, 10), "Sam Ortiz")  # the same hour books again
    assert again.status == "booked"
    # cancelling what is no longer booked is refused on the page, not a 500, and changes nothing
    twice = await console.post(f"/appointments/{dana.id}/cancel", data={"csrf_token": csrf_of(week.text)})
    assert twice.status_code == 409 and "already cancelled or moved" in twice.text
    assert [r[1] for r in rows(db_url)] == ["cancelled", "booked"]
    # what has already begun is past changing, for the owner as for a caller
    yesterday = await book(pool, at(datetime.now(PLUMBING_BRAIN.tz).date() - timedelta(days=1), 10), "Lee Park")
    late = await console.post(f"/appointments/{yesterday.id}/cancel", data={"csrf_token": csrf_of(week.text)})
    assert late.status_code == 409 and "already begun" in late.text
    assert [r[1] for r in rows(db_url)] == ["cancelled", "booked", "booked"]


async def test_a_move_onto_a_taken_slot_or_outside_hours_is_refused_and_a_free_one_moves_it(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str, pool: AsyncConnectionPool
) -> None:
    day = open_weekday()
    dana = await book(pool, at(day, 9), "Dana Whitfield")
    await book(pool, at(day, 13), "Sam Ortiz")
    add_user("ann@rosecity.example", PLUMBING)
    await log_in(console, "ann@rosecity.example")
    token = csrf_of((await console.get("/appointments", params={"week": day.isoformat()})).text)
    before = rows(db_url)

    async def move(start: str) -> httpx.Response:
        return await console.post(f"/appointments/{dana.id}/move", data={"csrf_token": token, "start": start})

    taken = await move(f"{day}T13:30")  # inside Sam's 13:00-14:30
    assert taken.status_code == 409
    assert f"{day} 13:30 is taken by another appointment: nothing was changed" in taken.text
    assert "Dana Whitfield" in taken.text  # the week is shown again, with the refusal
    evening = await move(f"{day}T19:00")
    assert evening.status_code == 400 and "outside our opening hours (7 AM to 6 PM)" in evening.text
    off_grid = await move(f"{day}T10:10")
    assert off_grid.status_code == 400 and "30-minute grid" in off_grid.text
    nonsense = await move("next tuesday")
    assert nonsense.status_code == 400 and "YYYY-MM-DD HH:MM" in nonsense.text
    assert rows(db_url) == before

    moved = await move(f"{day}T15:00")
    monday = day - timedelta(days=day.weekday())
    assert moved.status_code == 303 and moved.headers["location"] == f"/appointments?week={monday}"
    with psycopg.connect(db_url) as conn:
        new = conn.execute(
            "SELECT lower(during), upper(during), rescheduled_from FROM appointments WHERE status = 'booked'"
            " AND customer_name = 'Dana Whitfield'").fetchone()  # fmt: skip
    # the service's hour and the shop's buffer, as the reschedule tool books it
    assert new == (at(day, 15), at(day, 16, 30), dana.id)
    assert sorted(r[1] for r in rows(db_url)) == ["booked", "booked", "rescheduled"]


async def test_an_owner_can_neither_see_nor_change_another_owners_appointments_and_leads(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str, pool: AsyncConnectionPool
) -> None:
    day = open_weekday()
    theirs = await book(pool, at(day, 11), "Jordan Reyes", business=DENTAL, phone="+15035550177")
    lead = uuid.uuid4()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO leads (id, business, name, phone, need, score) VALUES"
                     " (%s, %s, 'Priya Natarajan', '+15035550188', 'Whitening', 90)", (lead, DENTAL))  # fmt: skip
    add_user("ann@rosecity.example", PLUMBING)
    add_user("ops@example.com", role="operator")
    await log_in(console, "ann@rosecity.example")

    week = await console.get("/appointments", params={"week": day.isoformat()})
    assert week.status_code == 200 and "Jordan Reyes" not in week.text and theirs.confirmation_code not in week.text
    leads = await console.get("/leads", params={"show": "all"})
    assert leads.status_code == 200 and "Priya" not in leads.text
    brain = await console.get("/brain")
    assert "Rose City Plumbing" in brain.text and "Lakeview" not in brain.text and "dental.yaml" not in brain.text
    token = csrf_of(week.text)
    for path, data in ((f"/appointments/{theirs.id}/cancel", {}),
                       (f"/appointments/{theirs.id}/move", {"start": f"{day}T14:00"}),
                       (f"/leads/{lead}/contacted", {})):  # fmt: skip
        refused = await console.post(path, data={"csrf_token": token, **data})
        assert refused.status_code == 404, path
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT status, lower(during) FROM appointments").fetchall() == [("booked", at(day, 11))]
        assert conn.execute("SELECT contacted_at FROM leads").fetchall() == [(None,)]
    # a malformed id or week is a 404 or 400 page; a form without its token a 403
    assert (await console.post("/appointments/not-an-id/cancel", data={"csrf_token": token})).status_code == 404
    assert (await console.post("/leads/42/contacted", data={"csrf_token": token})).status_code == 404
    for bad in ("2026-13-01", "soon", "9999-12-31"):
        assert (await console.get("/appointments", params={"week": bad})).status_code == 400, bad
    assert (await console.get("/leads", params={"show": "hot"})).status_code == 400

    console.cookies.clear()
    await log_in(console, "ops@example.com")  # an operator sees every business
    everyone = await console.get("/appointments", params={"week": day.isoformat()})
    assert "Jordan Reyes" in everyone.text and DENTAL in everyone.text
    assert "Priya Natarajan" in (await console.get("/leads")).text
    assert "dental.yaml" in (await console.get("/brain")).text


async def test_a_lead_marked_contacted_records_who_and_when(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str
) -> None:
    warm, hot = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(db_url, autocommit=True) as conn:
        for lead, name, score in ((warm, "Lee Park", 40), (hot, "Maria Gomez", 95)):
            conn.execute("INSERT INTO leads (id, business, name, phone, need, score, answers) VALUES"
                         " (%s, %s, %s, '+15035550150', 'New water heater', %s, %s)",
                         (lead, PLUMBING, name, score, Jsonb({"job_type": "install"})))  # fmt: skip
    add_user("ann@rosecity.example", PLUMBING)
    await log_in(console, "ann@rosecity.example")

    page = await console.get("/leads")
    assert page.status_code == 200 and page.text.index("Maria Gomez") < page.text.index("Lee Park")  # by score
    marked = await console.post(f"/leads/{hot}/contacted",
                                headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(page.text)})  # fmt: skip
    assert marked.status_code == 200 and "Contacted" in marked.text and "ann@rosecity.example" in marked.text
    with psycopg.connect(db_url) as conn:
        got = conn.execute(
            "SELECT l.name, l.contacted_at IS NOT NULL, u.email FROM leads l LEFT JOIN users u ON u.id = l.contacted_by"
            " ORDER BY l.score").fetchall()  # fmt: skip
    assert got == [("Lee Park", False, None), ("Maria Gomez", True, "ann@rosecity.example")]
    assert "Maria Gomez" not in (await console.get("/leads")).text  # no longer open
    assert "Maria Gomez" in (await console.get("/leads", params={"show": "all"})).text
    # without its token the form is refused and the lead stays open
    assert (await console.post(f"/leads/{warm}/contacted")).status_code == 403
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT contacted_at FROM leads WHERE id = %s", (warm,)).fetchone() == (None,)


async def test_the_brain_page_shows_the_file_and_why_it_does_not_validate(
    add_user: Callable[..., str], db_url: str, tmp_path: Path
) -> None:
    text = (ROOT / "brains/plumbing.yaml").read_text()
    (tmp_path / "plumbing.yaml").write_text(text.replace("duration_minutes: 60", "duration_minutes: soon", 1))
    add_user("ann@rosecity.example", PLUMBING)
    app = create_app(ConsoleConfig(db_url, brain_path=tmp_path))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test") as client:
            await log_in(client, "ann@rosecity.example")
            page = await client.get("/brain")
    assert page.status_code == 200
    assert "Not valid" in page.text and "services[0].duration_minutes" in page.text
    line = text.splitlines().index("    duration_minutes: 60") + 1
    assert f'href="#plumbing-L{line}">line {line}</a>' in page.text
    assert "2140 SE Division Street" in page.text  # the file itself, read-only


async def test_the_brain_page_says_a_valid_file_is_valid(
    console: httpx.AsyncClient, add_user: Callable[..., str]
) -> None:
    add_user("ann@rosecity.example", PLUMBING)
    await log_in(console, "ann@rosecity.example")
    page = await console.get("/brain")
    assert page.status_code == 200 and "Valid: 5 services" in page.text and "Not valid" not in page.text
