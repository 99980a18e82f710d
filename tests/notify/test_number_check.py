"""Proving a stated number by a texted code (brain `privacy.verify_by_text`): the code reaches only that
number (through the outbox and Twilio), the model is never told it, the caller reads it back and the
number's bookings then come back in full; a wrong, replayed or expired code proves nothing and counts
against the call's guesses. Graded on tool outputs, the outbox rows and what reached the Twilio fake."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import yaml
from livekit.agents import ToolError

from agent.brain import BrainError, load_brain, parse_brain
from agent.brain.render import render_instructions
from agent.brain.schema.notify import Notify
from agent.brain.schema.privacy import Privacy
from agent.flows.appointments import task_tools as appointment_tools
from agent.notify.channels import SmsChannel
from agent.notify.sender import OutboxSender
from agent.receptionist import receptionist_tools
from agent.store.journal.writer import CallJournal
from agent.tools import book_appointment, find_my_appointments
from agent.tools.number_check import confirm_number_code, text_number_code
from tests.tools.conftest import PINNED_NOW, PLUMBING, pinned_call, run_tool

MOM = "+15035550144"  # booked under her number; her son calls from his own phone
SON = "+15035550166"
BUSINESS_NUMBER = "+15035550100"
SLOT = "2026-12-01T10:00"


@pytest.fixture
async def journal(db_url: str) -> AsyncIterator[CallJournal]:
    journal = CallJournal(db_url, Path(tempfile.mkdtemp(prefix="code-spill-")))
    await journal.start()
    yield journal
    await journal.aclose(timeout=10)


def brain(*, verify_by_text: bool = True):
    return load_brain(PLUMBING).model_copy(
        update={"notify": Notify(caller_texts=True), "privacy": Privacy(verify_by_text=verify_by_text)}
    )


def a_call(pool, journal, caller: str, clock=lambda: PINNED_NOW, **brain_options):
    call = pinned_call(brain(**brain_options), pool=pool, journal=journal, caller_number=caller, clock=clock)
    call.start()
    return call


async def moms_booking(pool, journal) -> str:
    booked = json.loads(await run_tool(book_appointment, a_call(pool, journal, MOM), customer_name="Rosa Diaz",
                                       service="drain cleaning", start=SLOT))  # fmt: skip
    return booked["confirmation_code"]


async def texted_code(call, phone: str = "503 555 0144") -> str:
    """What the tools say while texting a code (read back, then sent); returns both answers joined."""
    read_back = await run_tool(text_number_code, call, phone=phone)
    assert json.loads(read_back)["read_back"] == "one five zero three five five five zero one four four"
    sent = await run_tool(text_number_code, call, phone=phone, number_confirmed=True)
    assert json.loads(sent)["sent"] is True
    return read_back + sent


async def delivered_code(pool, journal, twilio_fake) -> str:
    """The code as the text that reached MOM's phone says it."""
    assert await journal.flush(timeout=30)
    assert await OutboxSender(pool, {"sms": SmsChannel(twilio_fake.client(), pool)}).deliver_due() == 1
    [sms] = [m for m in twilio_fake.state.messages if m["to"] == MOM]
    assert sms["from"] == BUSINESS_NUMBER
    found = re.search(r"your code is (\d{6})\.", sms["body"])
    assert found, sms["body"]
    return found.group(1)


async def test_a_texted_code_read_back_proves_the_number_and_opens_its_bookings(
    db_url, pool, journal, twilio_fake
):
    twilio_fake.add_number(BUSINESS_NUMBER)
    code = await moms_booking(pool, journal)
    call = a_call(pool, journal, SON)
    withheld = json.loads(await run_tool(find_my_appointments, call, phone=MOM))
    assert set(withheld) == {"details", "next"} and code not in json.dumps(withheld)

    told = await texted_code(call)
    secret = await delivered_code(pool, journal, twilio_fake)
    assert secret not in told  # the model never hears the code, so it cannot say or misuse it
    proven = json.loads(await run_tool(confirm_number_code, call, code=" ".join(secret)))
    assert proven == {"proven": True, "phone": MOM, "next": "Call find_my_appointments with this phone."}
    [found] = json.loads(await run_tool(find_my_appointments, call, phone=MOM))
    assert (found["name"], found["confirmation_code"]) == ("Rosa Diaz", code)
    # the code is spent: it cannot prove anything again
    with pytest.raises(ToolError, match="No code has been texted"):
        await run_tool(confirm_number_code, call, code=secret)
    with psycopg.connect(db_url) as conn:
        kinds = conn.execute("SELECT kind, destination FROM outbox WHERE kind = 'caller_number_code'").fetchall()
    assert kinds == [("caller_number_code", MOM)]


async def test_wrong_codes_prove_nothing_and_end_lookups_after_three(db_url, pool, journal, twilio_fake):
    twilio_fake.add_number(BUSINESS_NUMBER)
    code = await moms_booking(pool, journal)
    call = a_call(pool, journal, SON)
    await texted_code(call)
    secret = await delivered_code(pool, journal, twilio_fake)
    wrong = f"{(int(secret) + 1) % 10**6:06d}"
    for _ in range(2):
        with pytest.raises(ToolError, match="not the code we texted"):
            await run_tool(confirm_number_code, call, code=wrong)
    # one wrong confirmation code elsewhere on the call uses the same budget
    with pytest.raises(ToolError, match="No upcoming appointment matches"):
        await run_tool(find_my_appointments, call, phone=MOM, confirmation_code="ZZZ-999")
    with pytest.raises(ToolError, match="Too many"):
        await run_tool(confirm_number_code, call, code=secret)  # even the right one, now
    with pytest.raises(ToolError, match="Too many"):
        await run_tool(find_my_appointments, call, phone=MOM, confirmation_code=code)
    assert MOM not in call.proven_numbers


async def test_an_expired_code_proves_nothing(db_url, pool, journal, twilio_fake):
    twilio_fake.add_number(BUSINESS_NUMBER)
    await moms_booking(pool, journal)
    now = [PINNED_NOW]
    call = a_call(pool, journal, SON, clock=lambda: now[0])
    await texted_code(call)
    secret = await delivered_code(pool, journal, twilio_fake)
    now[0] += timedelta(minutes=11)
    with pytest.raises(ToolError, match="expired"):
        await run_tool(confirm_number_code, call, code=secret)
    withheld = json.loads(await run_tool(find_my_appointments, call, phone=MOM))
    assert "details" in withheld


async def test_at_most_two_codes_a_call_and_none_without_a_confirmed_read_back(db_url, pool, journal):
    call = a_call(pool, journal, SON)
    unconfirmed = json.loads(await run_tool(text_number_code, call, phone="503 555 0177", number_confirmed=True))
    assert unconfirmed["sent"] is False  # never read back: the model's word is not enough
    await texted_code(call)
    await run_tool(text_number_code, call, phone=MOM, number_confirmed=True)
    with pytest.raises(ToolError, match="already texted two codes"):
        await run_tool(text_number_code, call, phone=MOM, number_confirmed=True)
    assert await journal.flush(timeout=30)
    with psycopg.connect(db_url) as conn:
        sent = conn.execute("SELECT destination FROM outbox WHERE kind = 'caller_number_code'").fetchall()
    assert sent == [(MOM,), (MOM,)]


def test_only_a_brain_that_texts_offers_codes_and_says_so():
    on, off = brain(), brain(verify_by_text=False)
    # offered where a caller's appointment is looked up (the appointment task), never to everyone
    assert text_number_code in appointment_tools(on) and confirm_number_code in appointment_tools(on)
    assert text_number_code not in appointment_tools(off) and text_number_code not in receptionist_tools(on)
    assert "text_number_code" in render_instructions(on) and "text_number_code" not in render_instructions(off)
    with pytest.raises(BrainError, match=r"privacy\.verify_by_text: .*set notify\.caller_texts"):
        raw = yaml.safe_load(PLUMBING.read_text())
        raw.setdefault("privacy", {})["verify_by_text"] = True
        raw.setdefault("notify", {})["caller_texts"] = False
        parse_brain(yaml.safe_dump(raw))
