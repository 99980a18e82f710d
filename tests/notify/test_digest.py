"""The daily digest and quiet hours, on a pinned clock: a business's digest is queued once its local
time has passed, exactly once a day whatever the number of senders or their restarts, and carries the
day's calls, bookings, messages in the caller's own words, leads, flags and cost; quiet hours hold
what can wait and let the urgent through."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

from agent.brain import load_brain
from agent.brain.schema.notify import Notify
from agent.notify.channels import EmailChannel, SmsChannel, WebhookChannel
from agent.notify.schedule import OwnerSchedule
from agent.notify.sender import OutboxSender
from agent.store import outbox
from agent.store.journal.events import (
    CallEnded,
    CallStarted,
    LeadRecord,
    MessageRecord,
    NotificationQueued,
)
from tests.notify.conftest import WEBHOOK_SECRET, queue
from tests.tools.conftest import PLUMBING

LA = ZoneInfo("America/Los_Angeles")
OWNER_EMAIL, OWNER_SMS = "owner@rosecity.example", "+15035550177"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=LA)


def brain_with(**notify):
    return load_brain(PLUMBING).model_copy(update={"notify": Notify(**notify)})


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def a_sender(pool, brain, clock, channels) -> OutboxSender:
    """One sender process: its own schedule (nothing shared with another sender but Postgres)."""
    return OutboxSender(pool, channels, schedule=OwnerSchedule([brain]), clock=clock, max_attempts=3)


def call_events(started_at: datetime, report: dict, *extra_records) -> list:
    call_id = uuid.uuid4()
    events = [
        CallStarted(call_id=call_id, business="Rose City Plumbing", started_at=started_at,
                    caller_number="+15035550123"),
        CallEnded(call_id=call_id, outcome=report.get("outcome"), end_reason="caller_hangup",
                  summary=report, ended_at=started_at + timedelta(minutes=3)),
    ]  # fmt: skip
    for make in extra_records:
        events.append(make(call_id, started_at + timedelta(minutes=2)))
    return events


def outbox_rows(db_url: str) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT key, kind, channel, status FROM outbox ORDER BY id").fetchall()


async def test_the_digest_goes_once_a_day_at_its_local_time_whatever_the_senders(
    db_url, pool, webhook_receiver, smtp_server, tmp_path
):
    brain = brain_with(email=[OWNER_EMAIL], webhook=webhook_receiver.url, digest_at="07:30")
    await queue(db_url, tmp_path / "spill", [
        # before the window (the previous digest had it): not in this one
        *call_events(at(27, 7, 0), {"outcome": "answered", "cost": {"total": 5.0}}),
        *call_events(at(27, 14, 0), {
            "outcome": "booked", "cost": {"total": 0.25},
            "bookings": [{"action": "booked", "code": "ABC-DEF", "service": "Drain cleaning",
                          "start": "2026-12-01T10:00"}],
        }),
        *call_events(at(27, 22, 15), {
            "outcome": "message", "cost": {"total": 0.15},
            "flags": [{"flag": "hung_up_during_greeting", "turns": []}],
            "prose": {"text": "Ana's water heater leaks; she wants a callback soon.", "model": "gpt-4.1-mini"},
        }, lambda call_id, t: MessageRecord(
            call_id=call_id, business="Rose City Plumbing", caller_name="Ana", phone="+15035550123",
            body="The water heater is leaking onto the garage floor", callback_requested=True,
            urgency="soon", created_at=t,
        ), lambda call_id, t: LeadRecord(
            call_id=call_id, business="Rose City Plumbing", score=55, name="Ana", phone="+15035550123",
            need="Replace the water heater", created_at=t,
        )),
    ])  # fmt: skip
    smtp_server.start()
    clock = Clock(at(28, 7, 29))
    channels = {"webhook": WebhookChannel(WEBHOOK_SECRET.encode()),
                "email": EmailChannel(pool, host="127.0.0.1", port=smtp_server.port,
                                      sender="receptionist@test", security="none")}  # fmt: skip
    senders = [a_sender(pool, brain, clock, channels) for _ in range(3)]

    await senders[0].deliver_due()
    assert outbox_rows(db_url) == []  # 07:29 in Portland: not yet

    clock.now = at(28, 7, 30)
    await asyncio.gather(*(s.deliver_due() for s in senders))
    assert outbox_rows(db_url) == [
        ("digest:Rose City Plumbing:2026-11-28/email:owner@rosecity.example", "digest", "email", "sent"),
        (f"digest:Rose City Plumbing:2026-11-28/webhook:{webhook_receiver.url}", "digest", "webhook", "sent"),
    ]
    [digest] = webhook_receiver.accepted
    assert digest["kind"] == "digest" and digest["day"] == "2026-11-28"
    detail = digest["detail"]
    assert detail["calls"] == 2 and detail["outcomes"]["booked"] == 1
    assert [(b["action"], b["code"]) for b in detail["bookings"]] == [("booked", "ABC-DEF")]
    assert [m["message"] for m in detail["messages_awaiting_callback"]] == [
        "The water heater is leaking onto the garage floor"
    ]
    assert [(lead["name"], lead["score"]) for lead in detail["leads"]] == [("Ana", 55)]
    assert [f["flags"] for f in detail["flagged_calls"]] == [["hung_up_during_greeting"]]
    assert [f["summary"] for f in detail["flagged_calls"]] == ["Ana's water heater leaks; she wants a callback soon."]
    assert detail["cost"]["total"] == 0.4
    [mail] = smtp_server.inbox.messages
    assert mail["Subject"] == "Daily digest - Rose City Plumbing (2026-11-28)"
    text = mail.get_body(("plain",)).get_content()
    assert '"The water heater is leaking onto the garage floor"' in text
    assert "booked Drain cleaning Tue 01 Dec 10:00 (code ABC-DEF)" in text
    assert "Cost: $0.40" in text
    # under the flagged call, what happened on it
    flagged_at = text.splitlines().index("  Fri 22:15 (+15035550123): hung_up_during_greeting")
    assert text.splitlines()[flagged_at + 1] == "    Ana's water heater leaks; she wants a callback soon."

    # a sender restarted later that morning, and one more round of the others: nothing new
    clock.now = at(28, 11, 0)
    restarted = a_sender(pool, brain, clock, channels)
    await asyncio.gather(restarted.deliver_due(), *(s.deliver_due() for s in senders))
    assert len(outbox_rows(db_url)) == 2 and len(webhook_receiver.accepted) == 1

    # the next morning: the next day's digest, once
    clock.now = at(29, 7, 45)
    await asyncio.gather(restarted.deliver_due(), *(s.deliver_due() for s in senders))
    assert [k for k, *_ in outbox_rows(db_url)][2:] == [
        "digest:Rose City Plumbing:2026-11-29/email:owner@rosecity.example",
        f"digest:Rose City Plumbing:2026-11-29/webhook:{webhook_receiver.url}",
    ]
    assert [d["day"] for d in webhook_receiver.accepted] == ["2026-11-28", "2026-11-29"]
    assert webhook_receiver.accepted[1]["detail"]["calls"] == 0
    await channels["webhook"].aclose()


async def test_without_digest_at_no_digest_is_queued(db_url, pool, webhook_receiver):
    brain = brain_with(webhook=webhook_receiver.url)
    sender = a_sender(pool, brain, Clock(at(28, 12, 0)), {})
    await sender.deliver_due()
    assert outbox_rows(db_url) == []


def owner_note(kind: str, channel: str, destination: str, now: datetime) -> NotificationQueued:
    return NotificationQueued(
        key=f"{kind}/{channel}:{destination}", business="Rose City Plumbing", kind=kind, channel=channel,
        destination=destination, created_at=now,
        payload={"version": 1, "kind": kind, "business": "Rose City Plumbing",
                 "business_number": "+15035550100", "summary": f"a {kind}", "sms": None},
    )  # fmt: skip


async def test_quiet_hours_hold_what_can_wait_and_let_the_urgent_through(
    db_url, pool, twilio_fake, webhook_receiver
):
    twilio_fake.add_number("+15035550100")
    brain = brain_with(sms=[OWNER_SMS], webhook=webhook_receiver.url, quiet_hours="21:00-07:00")
    clock = Clock(at(27, 23, 0))
    await outbox.queue(pool, [
        owner_note("urgent_message", "sms", OWNER_SMS, clock.now),      # wakes the owner
        owner_note("hot_lead", "sms", OWNER_SMS, clock.now),            # waits for 07:00
        owner_note("hot_lead", "webhook", webhook_receiver.url, clock.now),  # a system, not a sleeper
        owner_note("caller_booked", "sms", "+15035550123", clock.now),  # the caller's own confirmation
    ])  # fmt: skip
    channels = {"sms": SmsChannel(twilio_fake.client(), pool), "webhook": WebhookChannel(WEBHOOK_SECRET.encode())}
    sender = a_sender(pool, brain, clock, channels)

    await sender.deliver_due()
    # delivered side by side: the order between them is the fake's, not ours
    assert sorted((m["to"], m["body"]) for m in twilio_fake.state.messages) == [
        ("+15035550123", "Rose City Plumbing: a caller_booked"),
        (OWNER_SMS, "Rose City Plumbing: a urgent_message"),
    ]
    assert [p["kind"] for p in webhook_receiver.accepted] == ["hot_lead"]
    [held] = await outbox.list_notifications(pool, status="pending")
    assert (held.kind, held.channel, held.attempts) == ("hot_lead", "sms", 0)
    assert held.next_attempt_at == at(28, 7, 0)  # the end of the quiet hours, not an attempt

    clock.now = at(28, 6, 59)
    assert await sender.deliver_due() == 0
    clock.now = at(28, 7, 0)
    await sender.deliver_due()
    assert [m["body"] for m in twilio_fake.state.messages][2:] == ["Rose City Plumbing: a hot_lead"]
    assert await outbox.list_notifications(pool, status="pending") == []
    await channels["webhook"].aclose()


async def test_a_call_still_going_at_digest_time_is_in_the_next_digest_with_its_report(
    db_url, pool, webhook_receiver, tmp_path
):
    """The digest is built at its time: a call that started just before it had no report yet, and the
    next day's digest began where this one ended, so its flags and messages reached neither."""
    brain = brain_with(webhook=webhook_receiver.url, digest_at="07:30")
    channels = {"webhook": WebhookChannel(WEBHOOK_SECRET.encode())}
    started, ended = call_events(at(28, 7, 29), {"outcome": "message",
                                                 "flags": [{"flag": "frustration", "turns": [2]}]})  # fmt: skip
    await queue(db_url, tmp_path / "spill", [started])
    await a_sender(pool, brain, Clock(at(28, 7, 30)), channels).deliver_due()
    await queue(db_url, tmp_path / "spill", [ended])  # it ends at 07:32, its report with it
    await a_sender(pool, brain, Clock(at(29, 7, 30)), channels).deliver_due()
    first, second = (d["detail"] for d in webhook_receiver.accepted)
    assert (first["calls"], first["flagged_calls"]) == (0, [])
    assert second["calls"] == 1
    assert [f["flags"] for f in second["flagged_calls"]] == [["frustration"]]
    await channels["webhook"].aclose()
