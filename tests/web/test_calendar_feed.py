"""The owner's ICS feed, served by the console at the URL `receptionist calendar feed-url` prints: valid
iCalendar listing the business's bookings (not cancelled ones, a moved one at its new time), with what
the owner needs and no confirmation code or full number; a wrong or rotated-away token is a 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import psycopg
import pytest
from icalendar import Calendar

from agent.store import appointments
from agent.store.db import open_pool
from tests.tools.conftest import TZ
from tests.web.conftest import ROOT, receptionist
from web.app import ConsoleConfig, create_app

PLUMBING = "Rose City Plumbing"
BASE = "http://console.test"
SOON = datetime.now(TZ).replace(hour=10, minute=0, second=0, microsecond=0) + timedelta(days=3)


@pytest.fixture
async def console_with_brains(db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ConsoleConfig(db_url, brain_path=ROOT / "brains"))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
            yield client


def feed_url(db_url: str, *flags: str) -> str:
    done = receptionist("calendar", "feed-url", "--business", "rose city plumbing", "--base-url", BASE, *flags,
                        db_url=db_url)  # fmt: skip
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert url.startswith(f"{BASE}/calendar/") and url.endswith(".ics")
    return url


async def book_three(db_url: str) -> tuple[appointments.Appointment, appointments.Appointment]:
    """A booking, one moved (to SOON + 1 day, 14:00), and one cancelled; returns (kept, moved)."""
    pool = await open_pool(db_url, min_size=1, max_size=2)
    try:
        one_hour = timedelta(hours=1)
        kept = await appointments.book(pool, PLUMBING, "Drain cleaning", "Rosa Diaz", "+15035550144", SOON, SOON + one_hour)
        first = SOON + timedelta(days=1)
        moving = await appointments.book(pool, PLUMBING, "Water heater repair", "Li Wei", "+15035550155", first, first + one_hour)
        later = first.replace(hour=14)
        moved = await appointments.reschedule(pool, PLUMBING, moving.id, later, later + one_hour, "+15035550155")
        gone = SOON + timedelta(days=2)
        await appointments.book(pool, PLUMBING, "Drain cleaning", "Ann Other", "+15035550166", gone, gone + one_hour)
        await appointments.cancel(pool, PLUMBING, (await appointments.find_for_caller(
            pool, PLUMBING, phone="+15035550166"))[0].confirmation_code, "+15035550166")  # fmt: skip
        return kept, moved
    finally:
        await pool.close()


async def test_the_feed_lists_the_bookings_with_what_the_owner_needs_and_no_more(db_url, console_with_brains):
    kept, moved = await book_three(db_url)
    url = feed_url(db_url)
    assert feed_url(db_url) == url  # printed again, not replaced

    resp = await console_with_brains.get(url.removeprefix(BASE))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/calendar")
    assert "no-store" in resp.headers["cache-control"]
    cal = Calendar.from_ical(resp.content)
    assert str(cal["x-wr-calname"]) == "Rose City Plumbing bookings"
    events = [(str(e["summary"]), e["dtstart"].dt.astimezone(TZ), e["dtend"].dt.astimezone(TZ))
              for e in cal.walk("VEVENT")]  # fmt: skip
    assert events == [
        ("Drain cleaning: Rosa D.", kept.start, kept.end),
        ("Water heater repair: Li W.", moved.start, moved.end),  # the moved one at its new time, once
    ]
    body = resp.text
    for secret in (kept.confirmation_code, moved.confirmation_code, "+15035550144", "Diaz"):
        assert secret not in body
    assert "phone ending 0144" in body


async def test_a_booking_whose_caller_was_forgotten_stays_without_their_name(db_url, console_with_brains):
    kept, _ = await book_three(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:  # as retention strips a past visit
        conn.execute("UPDATE appointments SET customer_name = NULL, customer_phone = NULL WHERE id = %s",
                     (kept.id,))  # fmt: skip
    resp = await console_with_brains.get(feed_url(db_url).removeprefix(BASE))
    summaries = [str(e["summary"]) for e in Calendar.from_ical(resp.content).walk("VEVENT")]
    assert summaries == ["Drain cleaning: a caller", "Water heater repair: Li W."]


async def test_a_wrong_or_rotated_token_is_not_found(db_url, console_with_brains):
    await book_three(db_url)
    old = feed_url(db_url)
    assert (await console_with_brains.get("/calendar/not-the-token.ics")).status_code == 404
    new = feed_url(db_url, "--rotate")
    assert new != old
    assert (await console_with_brains.get(old.removeprefix(BASE))).status_code == 404
    assert (await console_with_brains.get(new.removeprefix(BASE))).status_code == 200


def test_feed_url_refuses_a_business_no_brain_has(db_url):
    done = receptionist("calendar", "feed-url", "--business", "Nobody's Bakery", db_url=db_url)
    assert done.returncode == 2
    assert "no business named \"Nobody's Bakery\"" in done.stderr
