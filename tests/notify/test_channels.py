"""Each channel against a real local peer (aiosmtpd, the Twilio fake through the real `twilio`
client, an HTTP receiver that verifies signatures), a target's outage, and a fleet of senders."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import aiohttp
import psycopg
import pytest

from agent.notify.channels import SIGNATURE_HEADER, SmsChannel, channels_from_settings, sign
from agent.notify.sender import OutboxSender, sender_from_settings
from agent.settings import load_settings
from agent.store.db import open_pool
from agent.store.journal.events import CallStarted, TranscriptTurn
from agent.store.outbox import Claim, attempts_of, list_notifications
from tests.notify.conftest import WEBHOOK_SECRET, notification, queue


def settings_for(db_url: str, **overrides):
    # short waits stand in for the minutes a real deployment backs off
    return load_settings(
        openai_api_key="unused", database_url=db_url, outbox_backoff_s=0.05,
        outbox_backoff_max_s=0.2, outbox_poll_s=0.02, outbox_max_attempts=100, **overrides,
    )  # fmt: skip


def statuses(db_url: str) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall())


async def run_until(sender: OutboxSender, event, timeout: float = 60) -> None:  # noqa: ASYNC109
    """Run the sender until `event` (an asyncio or threading event) is set, then let its round end."""
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    try:
        async with asyncio.timeout(timeout):
            if isinstance(event, asyncio.Event):
                await event.wait()
            else:
                await asyncio.to_thread(event.wait)
    finally:
        stop.set()
        await task


async def test_email_carries_text_html_and_the_transcript(db_url, pool, smtp_server, tmp_path):
    smtp_server.start()
    call_id = uuid.uuid4()
    await queue(db_url, tmp_path / "spill", [
        CallStarted(call_id=call_id, business="Rose City Plumbing", caller_number="+14155550123"),
        TranscriptTurn(call_id=call_id, role="agent", text="Rose City Plumbing, how can I help?"),
        TranscriptTurn(call_id=call_id, role="caller", text="My basement is flooding, call me back!"),
        notification("email", "owner@rosecity.example", call_id=call_id),
    ])  # fmt: skip
    settings = settings_for(db_url, smtp_host="127.0.0.1", smtp_port=smtp_server.port,
                            smtp_security="none", notify_email_from="receptionist@rosecity.example")  # fmt: skip
    sender = sender_from_settings(settings, pool, channels_from_settings(settings, pool))
    await run_until(sender, smtp_server.inbox.expect(1))
    await sender.aclose()

    [message] = smtp_server.inbox.messages
    assert smtp_server.inbox.recipients == [["owner@rosecity.example"]]
    assert message["Subject"] == "Urgent message - Rose City Plumbing"
    assert message["From"] == "receptionist@rosecity.example"
    plain = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "the basement is flooding" in plain and "the basement is flooding" in html
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == f"transcript-{call_id}.txt"
    assert attachment.get_content().splitlines() == [  # SMTP carries text with CRLF line ends
        "agent: Rose City Plumbing, how can I help?",
        "caller: My basement is flooding, call me back!",
    ]
    assert statuses(db_url) == {"sent": 1}


async def test_sms_goes_through_twilio_messaging_from_the_business_number(
    db_url, pool, twilio_fake, tmp_path
):
    twilio_fake.add_number("+15035550100")
    await queue(db_url, tmp_path / "spill", [
        notification("sms", "+15035550177"),
        notification("sms", "not-a-number"),  # Twilio refuses it: recorded, never a crash
    ])  # fmt: skip
    sender = OutboxSender(pool, {"sms": SmsChannel(twilio_fake.client(), pool)}, max_attempts=5)
    assert await sender.deliver_due() == 2

    [sms] = twilio_fake.state.messages
    assert (sms["to"], sms["from"]) == ("+15035550177", "+15035550100")
    assert sms["body"] == (
        "Rose City Plumbing: Urgent message from Ana (+14155550123): the basement is flooding"
    )
    posted = [r.form["To"] for r in twilio_fake.requests("POST") if r.path.endswith("/Messages.json")]
    assert sorted(posted) == ["+15035550177", "not-a-number"]
    # no retry can make it a number: dead at once, with Twilio's reason
    [refused] = await list_notifications(pool, status="dead")
    assert refused.destination == "not-a-number"
    assert refused.last_error.startswith("not-a-number cannot take texts (Twilio 400 error 21211")
    assert statuses(db_url) == {"sent": 1, "dead": 1}


async def test_a_text_twilio_took_though_its_answer_was_lost_is_not_sent_again(db_url, pool, twilio_fake, tmp_path):
    """Twilio's Messages API has no idempotency key: a text it queued and then answered with a 500
    (or not in time) was retried, and the owner got it twice. A retry now asks Twilio first."""
    twilio_fake.add_number("+15035550100")
    twilio_fake.state.lost_answers = 1
    await queue(db_url, tmp_path / "spill", [notification("sms", "+15035550177")])
    sender = OutboxSender(pool, {"sms": SmsChannel(twilio_fake.client(), pool)}, backoff_s=0.01)
    assert await sender.deliver_due() == 1
    assert statuses(db_url) == {"pending": 1}  # failed, as far as the sender knows
    await asyncio.sleep(0.05)
    assert await sender.deliver_due() == 1
    assert statuses(db_url) == {"sent": 1}
    assert len(twilio_fake.state.messages) == 1  # the owner's phone buzzed once
    assert len([r for r in twilio_fake.requests("POST") if r.path.endswith("/Messages.json")]) == 1
    # a text Twilio refused before taking it is sent on its retry, as before
    twilio_fake.state.refused_texts = 1
    await queue(db_url, tmp_path / "spill", [notification("sms", "+15035550188")])
    assert await sender.deliver_due() == 1
    await asyncio.sleep(0.05)
    assert await sender.deliver_due() == 1
    assert [m["to"] for m in twilio_fake.state.messages] == ["+15035550177", "+15035550188"]
    # the same words to the same number a minute earlier, for another row (the same caller's second
    # failed hand-off): not this text, which its retry sends
    earlier = datetime.now(UTC) - timedelta(seconds=30)
    twilio_fake.state.messages[0]["date_created"] = format_datetime(earlier)
    twilio_fake.state.refused_texts = 1
    await queue(db_url, tmp_path / "spill", [notification("sms", "+15035550177")])
    assert await sender.deliver_due() == 1
    await asyncio.sleep(0.05)
    assert await sender.deliver_due() == 1
    assert [m["to"] for m in twilio_fake.state.messages] == ["+15035550177", "+15035550188", "+15035550177"]

class _Died(BaseException):
    """The sender's process ending where it stands: nothing it had not committed is kept."""


async def test_a_text_whose_sender_died_before_its_commit_is_not_sent_again(db_url, pool, twilio_fake, tmp_path, monkeypatch):
    """Twilio took the text, then the sender died before it could record the delivery (a SIGKILL, a
    lost node): its claim was rolled back, and the row was due again with no attempt recorded. The next
    sender sent it again; it now finds the text at Twilio and sends nothing."""
    twilio_fake.add_number("+15035550100")
    await queue(db_url, tmp_path / "spill", [notification("sms", "+15035550177")])

    async def dies(*_args, **_kwargs) -> None:
        raise _Died

    monkeypatch.setattr(Claim, "delivered", dies)
    with pytest.raises(_Died):
        await OutboxSender(pool, {"sms": SmsChannel(twilio_fake.client(), pool)}).deliver_due()
    monkeypatch.undo()
    assert len(twilio_fake.state.messages) == 1
    assert statuses(db_url) == {"pending": 1}
    [row] = await list_notifications(pool)
    assert (row.attempts, await attempts_of(pool, row.id)) == (0, [])  # nothing of that attempt was kept

    assert await OutboxSender(pool, {"sms": SmsChannel(twilio_fake.client(), pool)}).deliver_due() == 1
    assert statuses(db_url) == {"sent": 1}
    assert len(twilio_fake.state.messages) == 1  # the owner's phone buzzed once
    # a text sent whole the first time leaves nothing behind but its attempt
    await queue(db_url, tmp_path / "spill", [notification("sms", "+15035550188")])
    assert await OutboxSender(pool, {"sms": SmsChannel(twilio_fake.client(), pool)}).deliver_due() == 1
    assert [m["to"] for m in twilio_fake.state.messages] == ["+15035550177", "+15035550188"]
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM outbox_sends").fetchone() == (0,)


async def test_webhook_is_signed_versioned_and_a_replay_or_an_old_timestamp_is_refused(
    db_url, pool, webhook_receiver, tmp_path
):
    await queue(db_url, tmp_path / "spill", [notification("webhook", webhook_receiver.url)])
    settings = settings_for(db_url, notify_webhook_secret=WEBHOOK_SECRET)
    channels = channels_from_settings(settings, pool)
    sender = sender_from_settings(settings, pool, channels)
    await run_until(sender, webhook_receiver.expect(1))
    await sender.aclose()

    [payload] = webhook_receiver.accepted
    [row] = await list_notifications(pool)
    assert payload["id"] == row.key and payload["version"] == 1
    assert payload["kind"] == "urgent_message" and payload["business"] == "Rose City Plumbing"
    assert row.status == "sent"

    # what an attacker who captured that request could try
    body = b'{"id":"x","version":1}'
    fresh, old = int(time.time()), int(time.time()) - 3600
    async with aiohttp.ClientSession() as http:
        tries = [
            (body, sign(WEBHOOK_SECRET.encode(), fresh, body)),  # genuine: accepted
            (body, sign(WEBHOOK_SECRET.encode(), fresh, body)),  # the same request again
            (body, sign(WEBHOOK_SECRET.encode(), old, body)),  # an old one
            (body.replace(b"x", b"y"), sign(WEBHOOK_SECRET.encode(), fresh, body)),  # tampered
            (body, sign(b"another-secret", fresh, body)),
        ]
        codes = []
        for data, signature in tries:
            async with http.post(webhook_receiver.url, data=data,
                                 headers={SIGNATURE_HEADER: signature}) as resp:  # fmt: skip
                codes.append(resp.status)
    assert codes == [204, 409, 401, 401, 401]


async def test_smtp_down_then_up_every_message_is_delivered_exactly_once(
    db_url, pool, smtp_server, tmp_path
):
    events = [notification("email", f"owner{i}@rosecity.example", n=i) for i in range(20)]
    await queue(db_url, tmp_path / "spill", events)
    settings = settings_for(db_url, smtp_host="127.0.0.1", smtp_port=smtp_server.port,
                            smtp_security="none")  # fmt: skip
    sender = sender_from_settings(settings, pool, channels_from_settings(settings, pool))

    assert await sender.deliver_due() == 20  # the server is down: every attempt fails
    assert statuses(db_url) == {"pending": 20}
    smtp_server.start()
    await run_until(sender, smtp_server.inbox.expect(20))
    await sender.aclose()

    ids = [m["X-Receptionist-Delivery"] for m in smtp_server.inbox.messages]
    assert sorted(ids) == sorted(e.key for e in events)  # each once, none lost
    assert statuses(db_url) == {"sent": 20}
    for row in await list_notifications(pool):
        attempts = await attempts_of(pool, row.id)
        assert attempts[0]["error"].startswith("SMTP 127.0.0.1:")
        assert attempts[-1]["error"] is None


async def test_three_senders_deliver_1000_notifications_each_exactly_once(
    db_url, webhook_receiver, tmp_path
):
    events = [notification("webhook", webhook_receiver.url, n=i) for i in range(1000)]
    await queue(db_url, tmp_path / "spill", events)
    settings = settings_for(db_url, notify_webhook_secret=WEBHOOK_SECRET)
    pools = [await open_pool(db_url, min_size=1, max_size=2) for _ in range(3)]
    senders = [sender_from_settings(settings, p, channels_from_settings(settings, p)) for p in pools]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(s.run(stop)) for s in senders]
    try:
        async with asyncio.timeout(120):
            await webhook_receiver.expect(1000).wait()
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for s, p in zip(senders, pools, strict=True):
            await s.aclose()
            await p.close()

    ids = [p["id"] for p in webhook_receiver.accepted]
    assert len(ids) == 1000 and set(ids) == {e.key for e in events}
    assert statuses(db_url) == {"sent": 1000}
    with psycopg.connect(db_url) as conn:
        [(attempts,)] = conn.execute("SELECT count(*) FROM outbox_attempts").fetchall()
    assert attempts == 1000  # no row was attempted by two senders


async def test_notify_run_once_delivers_what_is_due_and_exits(
    db_url, webhook_receiver, tmp_path, monkeypatch, capsys
):
    from agent.cli import main

    await queue(db_url, tmp_path / "spill", [notification("webhook", webhook_receiver.url)])
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("NOTIFY_WEBHOOK_SECRET", WEBHOOK_SECRET)
    # the command runs its own event loop; the receiver keeps serving on this one meanwhile
    assert await asyncio.to_thread(main, ["notify", "run", "--once"]) == 0
    assert [p["kind"] for p in webhook_receiver.accepted] == ["urgent_message"]
    assert statuses(db_url) == {"sent": 1}
