"""Two-way CalDAV sync against a real Radicale on loopback: bookings, moves and cancellations reach the
owner's calendar through the outbox (once, even across an outage), the owner's own events block
check_availability from the local copy (stale copies flagged), and an owner event over a booking is
reported to the owner. Graded on what the CalDAV server holds, the tools' answers and the outbox rows."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from livekit.agents import ToolError

from agent.brain import Brain, load_brain
from agent.brain.schema.calendar import CalDav, Calendar
from agent.brain.schema.notify import Notify
from agent.calendar.caldav_sync import (
    CalendarChannel,
    CalendarConfigError,
    CalendarRefresher,
    accounts,
)
from agent.call_report import build_report
from agent.notify.channels import WebhookChannel
from agent.notify.sender import OutboxSender
from agent.store.journal.writer import CallJournal
from agent.store.privacy import RetentionPolicy, forget, sweep
from tests.fixtures.radicale import OWNER, PASSWORD_ENV, Radicale
from tests.notify.conftest import WEBHOOK_SECRET
from tests.tools.conftest import CALLER, PLUMBING, TZ, pinned_call, run_tool

from agent.tools import (  # isort: skip
    book_appointment, cancel_appointment, check_availability, reschedule_appointment,
)

SLOT, LATER = "2026-12-01T10:00", "2026-12-01T14:00"  # a Tuesday, free from the pinned clock
# after the test's bookings were made (the pinned call clock is in the past): what the senders run on
LATER_ON = datetime.now(UTC) + timedelta(hours=1)


def PINNED() -> datetime:  # noqa: N802 - the refresher's clock: the tools' pinned "now"
    return datetime(2026, 11, 24, 10, 0, tzinfo=TZ)


def upcoming_tuesday() -> tuple[str, str]:
    """10:00 and 14:00 on the first Tuesday two or more days from today (never a closure day in the
    brain), for what runs on the real clock (the console, `forget`); book it with `a_call(..., clock=TODAY)`."""
    today = datetime.now(TZ).date()
    tuesday = today + timedelta(days=2 + (1 - (today + timedelta(days=2)).weekday()) % 7)
    return f"{tuesday}T10:00", f"{tuesday}T14:00"


def TODAY() -> datetime:  # noqa: N802 - a call's clock, for bookings judged by the real clock later
    return datetime.now(TZ)


@pytest.fixture
async def journal(db_url: str) -> AsyncIterator[CallJournal]:
    journal = CallJournal(db_url, Path(tempfile.mkdtemp(prefix="calendar-spill-")))
    await journal.start()
    yield journal
    await journal.aclose(timeout=10)


def brain_with(radicale: Radicale, **notify: object) -> Brain:
    dav = CalDav(url=radicale.calendar_url, username=OWNER, password_env=PASSWORD_ENV)
    return load_brain(PLUMBING).model_copy(update={"calendar": Calendar(caldav=dav), "notify": Notify(**notify)})


def a_call(brain: Brain, pool, journal, clock=PINNED):
    call = pinned_call(brain, pool=pool, journal=journal, clock=clock)
    call.start()
    return call


def calendar_sender(brain: Brain, pool, clock=lambda: LATER_ON) -> OutboxSender:
    channel = CalendarChannel(pool, [brain], accounts([brain], os.environ))
    return OutboxSender(pool, {"calendar": channel}, backoff_s=60, clock=clock)


def events_of(radicale: Radicale) -> list[tuple[str, datetime, str]]:
    """(UID, local start, summary) of every event the CalDAV server holds."""
    found = []
    for e in radicale.events():
        c = e.icalendar_component
        found.append((str(c["uid"]), c["dtstart"].dt.astimezone(TZ), str(c["summary"])))
    return found


def owner_adds(radicale: Radicale, uid: str, start: datetime, end: datetime, summary: str) -> None:
    """The owner puts an event in their calendar, as their calendar app would (a plain PUT)."""
    radicale.calendar().add_event(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//owner phone//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20261120T120000Z\r\nDTSTART:{start.astimezone(UTC):%Y%m%dT%H%M%SZ}\r\n"
        f"DTEND:{end.astimezone(UTC):%Y%m%dT%H%M%SZ}\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def outbox_rows(db_url: str, channel: str) -> list[tuple[str, str, int, str | None]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT kind, status, attempts, last_error FROM outbox WHERE channel = %s ORDER BY id", (channel,)
        ).fetchall()


async def test_a_booking_its_move_and_its_cancellation_reach_the_calendar_as_one_event(
    db_url, pool, journal, radicale
):
    brain = brain_with(radicale)
    sender = calendar_sender(brain, pool)
    booked = json.loads(await run_tool(book_appointment, a_call(brain, pool, journal), customer_name="Rosa Diaz",
                                       service="drain cleaning", start=SLOT))  # fmt: skip
    assert await journal.flush(timeout=30)
    assert await sender.deliver_due() == 1
    [(uid, start, summary)] = events_of(radicale)
    assert (start, summary) == (datetime(2026, 12, 1, 10, 0, tzinfo=TZ), "Drain cleaning: Rosa Diaz")
    [item] = radicale.events()
    assert booked["confirmation_code"] in str(item.icalendar_component["description"])

    moved = json.loads(await run_tool(reschedule_appointment, a_call(brain, pool, journal),
                                      confirmation_code=booked["confirmation_code"], new_start=LATER))  # fmt: skip
    assert await journal.flush(timeout=30)
    assert await sender.deliver_due() == 1
    # the same event, moved: not a second one
    assert events_of(radicale) == [(uid, datetime(2026, 12, 1, 14, 0, tzinfo=TZ), "Drain cleaning: Rosa Diaz")]

    await run_tool(cancel_appointment, a_call(brain, pool, journal), confirmation_code=moved["confirmation_code"])
    assert await journal.flush(timeout=30)
    assert await sender.deliver_due() == 1
    assert events_of(radicale) == []
    assert [(kind, status) for kind, status, _, _ in outbox_rows(db_url, "calendar")] == [
        ("calendar_booked", "sent"), ("calendar_moved", "sent"), ("calendar_cancelled", "sent")]


async def test_a_booking_made_while_caldav_is_down_arrives_once_when_it_is_back(db_url, pool, journal, radicale):
    brain = brain_with(radicale)
    now = [LATER_ON]
    sender = calendar_sender(brain, pool, clock=lambda: now[0])
    radicale.stop()
    await run_tool(book_appointment, a_call(brain, pool, journal), customer_name="Rosa Diaz",
                   service="drain cleaning", start=SLOT)  # fmt: skip
    assert await journal.flush(timeout=30)
    assert await sender.deliver_due() == 1
    [(kind, status, attempts, error)] = outbox_rows(db_url, "calendar")
    assert (kind, status, attempts) == ("calendar_booked", "pending", 1)
    assert error is not None and error.startswith(f"CalDAV {radicale.calendar_url}")

    radicale.start()
    now[0] += timedelta(minutes=5)  # past the retry's backoff
    assert await sender.deliver_due() == 1
    assert await sender.deliver_due() == 0  # nothing left to send
    assert [(k, s, a) for k, s, a, _ in outbox_rows(db_url, "calendar")] == [("calendar_booked", "sent", 2)]
    assert [summary for _, _, summary in events_of(radicale)] == ["Drain cleaning: Rosa Diaz"]


async def test_a_replayed_delivery_overwrites_the_event_and_never_doubles_it(db_url, pool, journal, radicale):
    """A sender killed after the server took the event and before its commit sends it again."""
    brain = brain_with(radicale)
    await run_tool(book_appointment, a_call(brain, pool, journal), customer_name="Rosa Diaz",
                   service="drain cleaning", start=SLOT)  # fmt: skip
    assert await journal.flush(timeout=30)
    assert await calendar_sender(brain, pool).deliver_due() == 1
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE outbox SET status = 'pending', next_attempt_at = now() WHERE channel = 'calendar'")
    assert await calendar_sender(brain, pool).deliver_due() == 1
    assert len(events_of(radicale)) == 1


async def test_an_owner_busy_event_blocks_that_time_for_callers(db_url, pool, journal, radicale):
    brain = brain_with(radicale)
    refresher = CalendarRefresher(pool, [brain], accounts([brain], os.environ), clock=PINNED)
    offered = json.loads(await run_tool(check_availability, a_call(brain, pool, journal),
                                        service="drain cleaning", day="2026-12-01"))  # fmt: skip
    assert [s["start"][11:] for s in offered["slots"][:3]] == ["07:00", "07:30", "08:00"]

    owner_adds(radicale, "dentist-1@owner.example", datetime(2026, 12, 1, 6, 30, tzinfo=TZ),
               datetime(2026, 12, 1, 7, 30, tzinfo=TZ), "Dentist")  # fmt: skip
    assert await refresher.refresh() == 1
    call = a_call(brain, pool, journal)
    offered = json.loads(await run_tool(check_availability, call, service="drain cleaning", day="2026-12-01"))
    assert offered["slots"][0]["start"] == "2026-12-01T08:00"
    with pytest.raises(ToolError, match="not available"):
        await run_tool(book_appointment, call, customer_name="Rosa Diaz", service="drain cleaning",
                       start="2026-12-01T07:00")  # fmt: skip
    assert "calendar_stale" not in call.extras


async def test_all_day_and_recurring_owner_events_block_too(db_url, pool, journal, radicale):
    brain = brain_with(radicale)
    radicale.calendar().add_event(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//owner phone//EN\r\n"
        "BEGIN:VEVENT\r\nUID:holiday@owner.example\r\nDTSTAMP:20261120T120000Z\r\n"
        "DTSTART;VALUE=DATE:20261202\r\nDTEND;VALUE=DATE:20261203\r\nSUMMARY:Day off\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    radicale.calendar().add_event(  # lunch, 12:00-13:00 Los Angeles time, every day from Monday Nov 30
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//owner phone//EN\r\n"
        "BEGIN:VEVENT\r\nUID:lunch@owner.example\r\nDTSTAMP:20261120T120000Z\r\n"
        "DTSTART:20261130T200000Z\r\nDTEND:20261130T210000Z\r\nRRULE:FREQ=DAILY;COUNT=5\r\n"
        "SUMMARY:Lunch\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    assert await CalendarRefresher(pool, [brain], accounts([brain], os.environ), clock=PINNED).refresh() == 1
    call = a_call(brain, pool, journal)
    day_off = json.loads(await run_tool(check_availability, call, service="drain cleaning", day="2026-12-02"))
    assert day_off["slots"] == [] and day_off["next_available"]["date"] == "2026-12-03"
    with pytest.raises(ToolError, match="not available"):  # Tuesday's lunch, an occurrence of the series
        await run_tool(book_appointment, call, customer_name="Rosa Diaz", service="drain cleaning",
                       start="2026-12-01T12:00")  # fmt: skip
    booked = json.loads(await run_tool(book_appointment, call, customer_name="Rosa Diaz", service="drain cleaning",
                                       start="2026-12-01T14:00"))  # fmt: skip
    assert booked["booked"] is True


async def test_a_caldav_outage_keeps_the_last_copy_and_flags_the_call(db_url, pool, journal, radicale):
    brain = brain_with(radicale)
    refresher = CalendarRefresher(pool, [brain], accounts([brain], os.environ), clock=PINNED)
    owner_adds(radicale, "dentist-1@owner.example", datetime(2026, 12, 1, 7, 0, tzinfo=TZ),
               datetime(2026, 12, 1, 7, 30, tzinfo=TZ), "Dentist")  # fmt: skip
    assert await refresher.refresh() == 1
    radicale.stop()
    assert await refresher.refresh() == 0
    with psycopg.connect(db_url, autocommit=True) as conn:  # ten minutes of failed refreshes later
        conn.execute("UPDATE calendar_sync SET refreshed_at = refreshed_at - interval '10 minutes'")

    call = a_call(brain, pool, journal)
    offered = json.loads(await run_tool(check_availability, call, service="drain cleaning", day="2026-12-01"))
    assert offered["slots"][0]["start"] == "2026-12-01T08:00"  # the owner's 7:00-7:30 (and its buffer) still blocked
    stale = call.extras["calendar_stale"]
    assert stale["age_s"] >= 600 and stale["error"].startswith(f"CalDAV {radicale.calendar_url}")
    call.set_outcome("answered")
    call.end_reason = "caller_hangup"
    flags = {f["flag"]: f for f in build_report(call)["flags"]}
    assert flags["calendar_stale"]["age_s"] == stale["age_s"]


async def test_never_refreshed_means_our_own_appointments_only_and_a_flag(db_url, pool, journal, radicale):
    brain = brain_with(radicale)
    radicale.stop()
    refresher = CalendarRefresher(pool, [brain], accounts([brain], os.environ))
    assert await refresher.refresh() == 0
    call = a_call(brain, pool, journal)
    offered = json.loads(await run_tool(check_availability, call, service="drain cleaning", day="2026-12-01"))
    assert offered["slots"][0]["start"] == "2026-12-01T07:00"
    assert call.extras["calendar_stale"]["age_s"] is None


async def test_an_owner_event_over_a_booking_is_reported_to_the_owner_once(
    db_url, pool, journal, radicale, webhook_receiver
):
    brain = brain_with(radicale, webhook=webhook_receiver.url)
    refresher = CalendarRefresher(pool, [brain], accounts([brain], os.environ), clock=PINNED)
    booked = json.loads(await run_tool(book_appointment, a_call(brain, pool, journal), customer_name="Rosa Diaz",
                                       service="drain cleaning", start=SLOT))  # fmt: skip
    assert await journal.flush(timeout=30)
    owner_adds(radicale, "gym@owner.example", datetime(2026, 12, 1, 10, 30, tzinfo=TZ),
               datetime(2026, 12, 1, 11, 30, tzinfo=TZ), "Gym")  # fmt: skip
    assert await refresher.refresh() == 1
    assert await refresher.refresh() == 1  # the same overlap, seen again: no second word

    channels = {"webhook": WebhookChannel(WEBHOOK_SECRET.encode()),
                "calendar": CalendarChannel(pool, [brain], accounts([brain], os.environ))}  # fmt: skip
    sender = OutboxSender(pool, channels, clock=lambda: LATER_ON)
    try:
        while await sender.deliver_due():
            pass
    finally:
        await sender.aclose()
    [told] = webhook_receiver.accepted
    assert told["kind"] == "calendar_conflict"
    assert told["detail"]["confirmation_code"] == booked["confirmation_code"]
    assert told["summary"].startswith('Your calendar event "Gym" (Tue Dec 1 10:30-11:30) overlaps Rosa Diaz\'s'
                                      " Drain cleaning booked for Tue Dec 1 10:00")  # fmt: skip
    # the booking stands, and is still in the owner's calendar beside their event
    assert sorted(summary for _, _, summary in events_of(radicale)) == ["Drain cleaning: Rosa Diaz", "Gym"]


def test_a_caldav_password_variable_that_is_not_set_is_named():
    dav = CalDav(url="https://dav.example/owner/bookings/", username=OWNER, password_env=PASSWORD_ENV)
    brain = load_brain(PLUMBING).model_copy(update={"calendar": Calendar(caldav=dav)})
    with pytest.raises(CalendarConfigError, match=f"calendar.caldav.password_env: {PASSWORD_ENV} is not set"):
        accounts([brain], {})


async def test_an_owners_move_and_cancel_in_the_console_reach_the_calendar_too(
    db_url, pool, journal, radicale, tmp_path
):
    """The console changes bookings through the same store; the owner's calendar must not keep
    showing a booking the owner moved or cancelled there."""
    import httpx
    import yaml

    from tests.web.conftest import PASSWORD, csrf_of, log_in, receptionist
    from web.app import ConsoleConfig, create_app

    # the console refuses to change what has begun by the real clock
    slot, later = upcoming_tuesday()
    brain = brain_with(radicale)
    brains = tmp_path / "brains"
    brains.mkdir()
    raw = yaml.safe_load(PLUMBING.read_text())
    raw["calendar"] = {"caldav": {"url": radicale.calendar_url, "username": OWNER, "password_env": PASSWORD_ENV}}
    (brains / "plumbing.yaml").write_text(yaml.safe_dump(raw))
    sender = calendar_sender(brain, pool)
    booked = json.loads(await run_tool(book_appointment, a_call(brain, pool, journal, clock=TODAY),
                                       customer_name="Rosa Diaz", service="drain cleaning", start=slot))  # fmt: skip
    assert await journal.flush(timeout=30)
    assert await sender.deliver_due() == 1
    [(uid, _, _)] = events_of(radicale)
    with psycopg.connect(db_url) as conn:
        (appointment_id,) = conn.execute(
            "SELECT id FROM appointments WHERE confirmation_code = %s", (booked["confirmation_code"],)
        ).fetchone()

    added = receptionist("users", "add", "ann@rosecity.example", "--business", brain.business.name,
                         "--password-stdin", db_url=db_url, stdin=PASSWORD + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    app = create_app(ConsoleConfig(db_url, brain_path=brains))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://console.test"
    ) as console:
        await log_in(console, "ann@rosecity.example")
        week = await console.get("/appointments", params={"week": slot[:10]})
        moved = await console.post(f"/appointments/{appointment_id}/move",
                                   data={"csrf_token": csrf_of(week.text), "start": later.replace("T", " ")})  # fmt: skip
        assert moved.status_code == 303, moved.text
        assert await sender.deliver_due() == 1
        assert events_of(radicale) == [(uid, datetime.fromisoformat(later).replace(tzinfo=TZ), "Drain cleaning: Rosa Diaz")]

        with psycopg.connect(db_url) as conn:
            (new_id,) = conn.execute("SELECT id FROM appointments WHERE status = 'booked'").fetchone()
        cancelled = await console.post(f"/appointments/{new_id}/cancel", data={"csrf_token": csrf_of(week.text)})
        assert cancelled.status_code == 303, cancelled.text
        assert await sender.deliver_due() == 1
    assert events_of(radicale) == []
    assert [(kind, status) for kind, status, _, _ in outbox_rows(db_url, "calendar")] == [
        ("calendar_booked", "sent"), ("calendar_moved", "sent"), ("calendar_cancelled", "sent")]


async def test_forgetting_a_caller_deletes_their_booking_from_the_owners_calendar(db_url, pool, journal, radicale):
    brain = brain_with(radicale)
    sender = calendar_sender(brain, pool)
    slot, _ = upcoming_tuesday()  # forget cancels the bookings still to come by the real clock
    await run_tool(book_appointment, a_call(brain, pool, journal, clock=TODAY), customer_name="Rosa Diaz",
                   service="drain cleaning", start=slot)  # fmt: skip
    assert await journal.flush(timeout=30)
    assert await sender.deliver_due() == 1
    assert len(events_of(radicale)) == 1

    result = await forget(db_url, CALLER, requested_by="owner")
    [cancelled] = result.cancelled
    assert result.counts["outbox"]["queued"] == 1
    assert await sender.deliver_due() == 1
    # the owner no longer sees a job that will not happen, nor the name of someone who asked to be forgotten
    assert events_of(radicale) == []
    with psycopg.connect(db_url) as conn:
        [(payload,)] = conn.execute("SELECT payload::text FROM outbox WHERE channel = 'calendar'").fetchall()
    assert "Rosa" not in payload and CALLER[-7:] not in payload
    # a second request finds nothing left to update
    assert (await forget(db_url, CALLER, requested_by="owner")).counts["outbox"].get("queued") is None


async def test_retention_strips_a_past_bookings_caller_from_the_owners_calendar(db_url, pool, journal, radicale):
    brain = brain_with(radicale)
    sender = calendar_sender(brain, pool)
    booked = json.loads(await run_tool(book_appointment, a_call(brain, pool, journal), customer_name="Rosa Diaz",
                                       service="drain cleaning", start=SLOT))  # fmt: skip
    assert await journal.flush(timeout=30)
    assert await sender.deliver_due() == 1

    months_later = datetime(2027, 3, 1, tzinfo=UTC)
    result = await sweep(db_url, [RetentionPolicy(brain.business.name, 30)], now=months_later)
    assert result.counts[brain.business.name]["outbox"]["queued"] == 1
    assert await sender.deliver_due() == 1
    [item] = radicale.events()
    event = item.icalendar_component
    assert str(event["summary"]) == "Drain cleaning: a caller"
    description = str(event["description"])
    assert "Rosa" not in description and CALLER[-7:] not in description
    assert booked["confirmation_code"] in description  # the booking itself stays on record


async def test_a_booking_made_long_before_its_visit_still_leaves_the_owners_calendar_with_its_caller(
    db_url, pool, journal, radicale
):
    """Retention deleted the booking's calendar row by when it was queued, before the visit was old
    enough to strip: when it was, nothing said which calendar event to update, and the owner's
    calendar kept the caller's name and number for good."""
    brain = brain_with(radicale)
    sender = calendar_sender(brain, pool)
    await run_tool(book_appointment, a_call(brain, pool, journal), customer_name="Rosa Diaz",
                   service="drain cleaning", start=SLOT)  # fmt: skip
    assert await journal.flush(timeout=30)
    assert await sender.deliver_due() == 1
    visit_end = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)  # 10:00-11:00 in Portland, and some
    with psycopg.connect(db_url, autocommit=True) as conn:  # booked 50 days ahead of the visit
        conn.execute("UPDATE outbox SET created_at = %s WHERE channel = 'calendar'", (visit_end - timedelta(days=50),))
    policy = [RetentionPolicy(brain.business.name, 30)]

    # 40 days after the booking: its queue row is past retention, the visit (10 days ahead) is not
    early = await sweep(db_url, policy, now=visit_end - timedelta(days=10))
    assert early.counts[brain.business.name]["appointments"]["anonymised"] == 0
    # 40 days after the visit: the booking loses its caller, and so does the owner's calendar
    late = await sweep(db_url, policy, now=visit_end + timedelta(days=40))
    assert late.counts[brain.business.name]["appointments"]["anonymised"] == 1
    assert late.counts[brain.business.name]["outbox"]["queued"] == 1
    assert await sender.deliver_due() == 1
    [item] = radicale.events()
    description = str(item.icalendar_component["description"])
    assert "Rosa" not in description and CALLER[-7:] not in description
