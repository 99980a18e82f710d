"""Texts to the caller: a confirmation after a booking, a move or a cancellation only when the brain
enables it and the caller agreed (the consent is on the appointment), always to the number the booking
is under; the address or directions only to a number read back and confirmed; and a number that cannot
take texts, or that texted STOP, ends as a clear error on its row, never a crash. Graded on the rows in
Postgres and on what reached the Twilio fake."""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from livekit.agents import ToolError

from agent.brain import load_brain
from agent.brain.schema.notify import Notify
from agent.notify.channels import SmsChannel
from agent.notify.sender import OutboxSender
from agent.store.journal.writer import CallJournal
from agent.store.opt_outs import opt_out
from agent.store.outbox import list_notifications
from agent.tools import book_appointment, cancel_appointment, reschedule_appointment, send_text
from tests.tools.conftest import CALLER, PLUMBING, pinned_call, run_tool

FREE_SLOT, LATER_SLOT = "2026-12-01T10:00", "2026-12-01T14:00"  # a Tuesday, free from the pinned clock
MOM = "+15035550144"  # the number a caller books their mother's appointment under
BUSINESS_NUMBER = "+15035550100"


@pytest.fixture
async def journal(db_url: str) -> AsyncIterator[CallJournal]:
    journal = CallJournal(db_url, Path(tempfile.mkdtemp(prefix="texts-spill-")))
    await journal.start()
    yield journal
    await journal.aclose(timeout=10)


def a_call(pool, journal, *, caller_texts: bool = True, caller: str | None = CALLER):
    brain = load_brain(PLUMBING).model_copy(update={"notify": Notify(caller_texts=caller_texts)})
    call = pinned_call(brain, pool=pool, journal=journal, caller_number=caller)
    call.start()
    return call


async def texts_queued(journal: CallJournal, db_url: str) -> list[tuple[str, str, str]]:
    assert await journal.flush(timeout=30)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT kind, destination, payload FROM outbox ORDER BY id").fetchall()
    return [(kind, to, payload["sms"]) for kind, to, payload in rows]


def consent_of(db_url: str) -> dict[str, tuple[str, bool | None, bool]]:
    """Appointments by code: (status, text_consent, whether the consent has a time)."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT confirmation_code, status, text_consent, text_consent_at IS NOT NULL FROM appointments"
        ).fetchall()
    return {code: (status, consent, stamped) for code, status, consent, stamped in rows}


async def test_a_booking_the_caller_agreed_to_is_confirmed_by_text_to_the_booked_number(
    db_url, pool, journal, twilio_fake
):
    twilio_fake.add_number(BUSINESS_NUMBER)
    call = a_call(pool, journal)
    out = json.loads(await run_tool(book_appointment, call, customer_name="Rosa Diaz", service="drain cleaning",
                                    start=FREE_SLOT, phone="503 555 0144", text_consent=True))  # fmt: skip
    code = out["confirmation_code"]
    assert out["text"].startswith("a confirmation text is on its way")
    assert consent_of(db_url) == {code: ("booked", True, True)}
    [(kind, to, body)] = await texts_queued(journal, db_url)
    assert (kind, to) == ("caller_booked", MOM)  # the booking's number, not the caller ID

    sender = OutboxSender(pool, {"sms": SmsChannel(twilio_fake.client(), pool)})
    assert await sender.deliver_due() == 1
    [sms] = twilio_fake.state.messages
    assert (sms["to"], sms["from"]) == (MOM, BUSINESS_NUMBER)
    assert sms["body"] == (
        "Rose City Plumbing: your Drain cleaning is booked for Tue Dec 1 at 10 AM, at 2140 SE Division"
        f" Street, Portland, OR 97202. Confirmation code {code}. To change or cancel it, call +15035550100"
        " and give your code. Reply STOP to stop texts."
    )


async def test_no_text_without_the_callers_yes_or_when_the_business_sends_none(db_url, pool, journal):
    declined = json.loads(await run_tool(book_appointment, a_call(pool, journal), customer_name="Rosa Diaz",
                                         service="drain cleaning", start=FREE_SLOT))  # fmt: skip
    assert declined["text"] == "none: the caller did not agree to a text"
    off = json.loads(await run_tool(book_appointment, a_call(pool, journal, caller_texts=False),
                                    customer_name="Rosa Diaz", service="drain cleaning", start=LATER_SLOT,
                                    text_consent=True))  # fmt: skip
    assert "text" not in off  # the model hears nothing of texts where there are none
    assert consent_of(db_url) == {
        declined["confirmation_code"]: ("booked", False, True),
        off["confirmation_code"]: ("booked", None, False),  # nobody was asked
    }
    assert await texts_queued(journal, db_url) == []


async def test_a_move_and_a_cancellation_are_texted_to_the_number_the_booking_is_under(
    db_url, pool, journal
):
    booked = json.loads(await run_tool(book_appointment, a_call(pool, journal), customer_name="Rosa Diaz",
                                       service="drain cleaning", start=FREE_SLOT, phone=MOM))  # fmt: skip
    # another call, from another phone, with the booking's number and code
    moved = json.loads(await run_tool(reschedule_appointment, a_call(pool, journal, caller="+15035550999"),
                                      confirmation_code=booked["confirmation_code"], new_start=LATER_SLOT,
                                      phone=MOM, text_consent=True))  # fmt: skip
    cancelled = json.loads(await run_tool(cancel_appointment, a_call(pool, journal),
                                          confirmation_code=moved["confirmation_code"], phone=MOM,
                                          text_consent=True))  # fmt: skip
    texts = await texts_queued(journal, db_url)
    assert [(kind, to) for kind, to, _ in texts] == [("caller_rescheduled", MOM), ("caller_cancelled", MOM)]
    assert "moved to Tue Dec 1 at 2 PM" in texts[0][2] and moved["confirmation_code"] in texts[0][2]
    assert f"on Tue Dec 1 at 2 PM is cancelled (code {cancelled['confirmation_code']})" in texts[1][2]
    assert consent_of(db_url) == {
        booked["confirmation_code"]: ("rescheduled", False, True),
        moved["confirmation_code"]: ("cancelled", True, True),
    }


async def test_a_landline_or_a_number_that_texted_stop_ends_as_an_error_on_its_row(
    db_url, pool, journal, twilio_fake
):
    twilio_fake.add_number(BUSINESS_NUMBER)
    twilio_fake.state.landlines.add(CALLER)
    await opt_out(pool, MOM, BUSINESS_NUMBER, "STOP")
    for phone, start in (("", FREE_SLOT), (MOM, LATER_SLOT)):
        await run_tool(book_appointment, a_call(pool, journal), customer_name="Rosa Diaz",
                       service="drain cleaning", start=start, phone=phone, text_consent=True)  # fmt: skip
    assert len(await texts_queued(journal, db_url)) == 2

    sender = OutboxSender(pool, {"sms": SmsChannel(twilio_fake.client(), pool)}, max_attempts=5)
    assert await sender.deliver_due() == 2
    assert await sender.deliver_due() == 0  # nothing left to retry
    errors = {n.destination: n.last_error for n in await list_notifications(pool, status="dead")}
    assert errors[CALLER] == (
        f"{CALLER} cannot take texts (Twilio 400 error 21614: Unable to create record: 'To' number {CALLER}"
        " is not a valid mobile number)"
    )
    assert errors[MOM].startswith(f"{MOM} texted STOP to {BUSINESS_NUMBER} on ")
    assert twilio_fake.state.messages == []
    sent_to = [r.form["To"] for r in twilio_fake.requests("POST") if r.path.endswith("/Messages.json")]
    assert sent_to == [CALLER]  # the opted-out number was never even tried


async def _text(call, **arguments: Any) -> dict:
    return json.loads(await run_tool(send_text, call, **arguments))


async def test_the_address_is_texted_only_to_a_number_read_back_and_confirmed(db_url, pool, journal):
    call = a_call(pool, journal)
    # the model says the caller confirmed, but no number was read back: nothing is sent
    first = await _text(call, topic="directions", phone="503 555 0144", number_confirmed=True)
    assert first["sent"] is False and first["read_back"] == "one five zero three five five five zero one four four"
    assert await texts_queued(journal, db_url) == []

    assert (await _text(call, topic="directions", phone="503 555 0144", number_confirmed=True))["sent"] is True
    # a confirmed number does not vouch for another one
    assert (await _text(call, topic="address", phone="503 555 0999", number_confirmed=True))["sent"] is False
    assert (await _text(call, topic="address", number_confirmed=False))["sent"] is False
    assert (await _text(call, topic="address", number_confirmed=True))["sent"] is True
    with pytest.raises(ToolError, match="already sent 2 texts"):
        await _text(call, topic="address", number_confirmed=True)
    texts = await texts_queued(journal, db_url)
    assert [(kind, to) for kind, to, _ in texts] == [("caller_info", MOM), ("caller_info", CALLER)]
    assert "Directions: https://www.google.com/maps/dir/?api=1&destination=2140+SE+Division+Street" in texts[0][2]
    assert texts[1][2].startswith("Rose City Plumbing: 2140 SE Division Street, Portland, OR 97202.")


async def test_no_send_text_where_the_business_sends_no_texts(db_url, pool, journal):
    with pytest.raises(ToolError, match="We do not send texts"):
        await _text(a_call(pool, journal, caller_texts=False), topic="address", number_confirmed=True)
