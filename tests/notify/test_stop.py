"""STOP and START by text: Twilio's inbound SMS webhook, with requests signed the way Twilio signs them
(its own RequestValidator), writes the STOP list; a request without a valid signature changes nothing;
and a number on the list gets no text, while START lets texts through again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import aiohttp
import psycopg
import pytest
from twilio.request_validator import RequestValidator

from agent.notify.channels import SmsChannel
from agent.notify.inbound import EMPTY_TWIML, SMS_PATH, inbound_app
from agent.notify.sender import OutboxSender
from agent.store.outbox import list_notifications
from agent.store.webhook_backlog import WebhookBacklog
from tests.notify.conftest import notification, queue, served

AUTH_TOKEN = "twilio-auth-token-test-7c1e"
CALLER, BUSINESS_NUMBER = "+15035550123", "+15035550100"


@pytest.fixture
async def inbound(pool, tmp_path) -> AsyncIterator[str]:
    """The webhook on a free port; yields its URL."""
    async with served(inbound_app(pool, AUTH_TOKEN, backlog=WebhookBacklog(tmp_path / "spill"))) as base:
        yield base + SMS_PATH


async def text_us(url: str, body: str, *, token: str = AUTH_TOKEN, sender: str = CALLER) -> tuple[int, str]:
    """What Twilio POSTs when `sender` texts `body` to the business number, signed with `token`."""
    form = {"MessageSid": "SM" + "0" * 32, "From": sender, "To": BUSINESS_NUMBER, "Body": body}
    signature = RequestValidator(token).compute_signature(url, form)
    async with aiohttp.ClientSession() as http, http.post(
        url, data=urlencode(form), headers={"X-Twilio-Signature": signature,
                                            "Content-Type": "application/x-www-form-urlencoded"},  # fmt: skip
    ) as resp:
        return resp.status, await resp.text()


def stop_list(db_url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT phone, business_number, keyword FROM sms_opt_outs").fetchall()


async def test_stop_by_text_is_honoured_and_start_undoes_it(db_url, pool, inbound, twilio_fake, tmp_path):
    twilio_fake.add_number(BUSINESS_NUMBER)
    assert await text_us(inbound, "Stop.") == (200, EMPTY_TWIML)
    assert await text_us(inbound, "unsubscribe", sender="+15035550144") == (200, EMPTY_TWIML)
    assert await text_us(inbound, "Is the plumber coming today?", sender="+15035550155") == (200, EMPTY_TWIML)
    assert sorted(stop_list(db_url)) == [
        (CALLER, BUSINESS_NUMBER, "STOP"), ("+15035550144", BUSINESS_NUMBER, "UNSUBSCRIBE"),
    ]  # fmt: skip

    sender = OutboxSender(pool, {"sms": SmsChannel(twilio_fake.client(), pool)})
    await queue(db_url, tmp_path / "spill", [notification("sms", CALLER, kind="caller_booked", n=1)])
    await sender.deliver_due()
    assert twilio_fake.state.messages == []
    [dead] = await list_notifications(pool, status="dead")
    assert f"{CALLER} texted STOP to {BUSINESS_NUMBER}" in dead.last_error

    assert await text_us(inbound, "START") == (200, EMPTY_TWIML)
    assert stop_list(db_url) == [("+15035550144", BUSINESS_NUMBER, "UNSUBSCRIBE")]
    await queue(db_url, tmp_path / "spill", [notification("sms", CALLER, kind="caller_booked", n=2)])
    await sender.deliver_due()
    assert [m["to"] for m in twilio_fake.state.messages] == [CALLER]


async def test_a_stop_texted_while_postgres_is_down_is_on_the_list_once_it_is_back(db_url, pool, pg_server, tmp_path):
    backlog = WebhookBacklog(tmp_path / "spill", retry_s=0.2)
    async with served(inbound_app(pool, AUTH_TOKEN, backlog=backlog)) as base:
        pg_server.stop()
        # in the order they came: the last word of each sender stands
        assert await text_us(base + SMS_PATH, "STOP") == (200, EMPTY_TWIML)
        assert await text_us(base + SMS_PATH, "Stop", sender="+15035550144") == (200, EMPTY_TWIML)
        assert await text_us(base + SMS_PATH, "Start", sender="+15035550144") == (200, EMPTY_TWIML)
        assert backlog.waiting == 3
        pg_server.start()
        deadline = asyncio.get_running_loop().time() + 60
        while backlog.waiting:
            assert asyncio.get_running_loop().time() < deadline, "the STOPs were never written"
            await asyncio.sleep(0.1)
    assert stop_list(db_url) == [(CALLER, BUSINESS_NUMBER, "STOP")]


async def test_a_start_written_late_does_not_undo_a_newer_stop(db_url, pool):
    from datetime import UTC, datetime, timedelta

    from agent.store.opt_outs import opt_in, opt_out

    start_at = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
    await opt_out(pool, CALLER, BUSINESS_NUMBER, "STOP", start_at + timedelta(minutes=1))
    # a START sent before that STOP, written once Postgres was back: the STOP stands
    assert not await opt_in(pool, CALLER, BUSINESS_NUMBER, start_at)
    assert stop_list(db_url) == [(CALLER, BUSINESS_NUMBER, "STOP")]
    assert await opt_in(pool, CALLER, BUSINESS_NUMBER, start_at + timedelta(minutes=2))
    assert stop_list(db_url) == []


async def test_a_request_without_twilios_signature_changes_nothing(db_url, inbound):
    status, _ = await text_us(inbound, "STOP", token="someone-elses-token")
    assert status == 403
    async with aiohttp.ClientSession() as http, http.post(
        inbound, data={"From": CALLER, "To": BUSINESS_NUMBER, "Body": "STOP"}
    ) as resp:
        assert resp.status == 403
    assert stop_list(db_url) == []


def test_notify_inbound_without_the_twilio_token_is_one_line(db_url, monkeypatch, capsys):
    from agent.cli import main

    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    assert main(["notify", "inbound", "--port", "0"]) == 2
    assert capsys.readouterr().err == (
        "receptionist: notify inbound needs TWILIO_AUTH_TOKEN: it checks that each request comes from Twilio\n"
    )
