"""What a call sends the owner at once: its causes (an urgent message, an escalation that reached
nobody, a hot lead, a grounding violation, a caller no model heard) become outbox rows when the call ends, one per channel,
and reach the owner; an ordinary call sends nothing."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import psycopg

from agent.brain import load_brain
from agent.brain.schema.escalation import Escalation
from agent.brain.schema.notify import Notify
from agent.call_end import finish_call
from agent.notify.channels import channels_from_settings
from agent.notify.sender import sender_from_settings
from agent.settings import load_settings
from agent.store.journal.writer import CallJournal
from agent.tools.escalation import escalate_to_human
from agent.tools.leads import capture_lead, take_message
from tests.notify.conftest import WEBHOOK_SECRET
from tests.tools.conftest import PLUMBING, pinned_call, run_tool

OWNER = {"email": ["owner@rosecity.example"], "sms": ["+15035550177"]}
HOT = {"job_type": "burst pipe", "urgency": "today", "property": "own", "zip_code": "97202"}
COLD = {"urgency": "just planning", "property": "rent"}


async def a_call(db_url: str, notify: Notify, steps, *, reason: str = "caller_hangup") -> list[tuple]:
    """Run a call's tools on the plumbing brain, end it, and return the outbox rows it left."""
    brain = load_brain(PLUMBING)
    brain = brain.model_copy(update={"notify": notify})
    if "escalation" in steps:
        brain = brain.model_copy(update={"escalation": Escalation(transfer_to=None)})
    journal = CallJournal(db_url, Path(tempfile.mkdtemp(prefix="notify-spill-")))
    await journal.start()
    call = pinned_call(brain, journal=journal)
    call.start()
    for step in steps:
        await steps[step](call)
    finish_call(call, reason=reason)
    assert await journal.flush(timeout=30)
    await journal.aclose()
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT kind, channel, destination, payload FROM outbox WHERE call_id = %s ORDER BY id",
            (call.call_id,),
        ).fetchall()


async def _urgent(call) -> None:
    await run_tool(take_message, call, caller_name="Ana", message="Water is pouring through the ceiling",
                   urgency="emergency")  # fmt: skip


async def _hot(call) -> None:
    await run_tool(capture_lead, call, name="Ana", need="Burst pipe in the basement", answers=HOT)


async def _nobody(call) -> None:
    await run_tool(escalate_to_human, call, reason="emergency", summary="Ana, a burst pipe")


async def _violation(call) -> None:
    call.record_violation(turn_seq=2, kind="invented_hours", claim="we are open on Sundays",
                          correction="closed on Sundays")  # fmt: skip


async def test_each_urgent_cause_is_queued_once_per_channel_when_the_call_ends(db_url):
    rows = await a_call(db_url, Notify(**OWNER), {
        "message": _urgent, "lead": _hot, "escalation": _nobody, "violation": _violation,
    })  # fmt: skip
    kinds = ["urgent_message", "escalation_failed", "hot_lead", "grounding_violation"]
    assert [(k, c, d) for k, c, d, _ in rows] == [
        (kind, channel, dest) for kind in kinds
        for channel, dest in (("email", "owner@rosecity.example"), ("sms", "+15035550177"))
    ]  # fmt: skip
    summaries = {k: p["summary"] for k, _, _, p in rows}
    assert summaries["urgent_message"] == (
        "Emergency message from Ana (+15035550123): Water is pouring through the ceiling"
    )
    assert summaries["hot_lead"].startswith("Hot lead (score 100): Ana, Burst pipe in the basement.")
    assert "nobody can take calls" in summaries["escalation_failed"]
    assert '"we are open on Sundays"' in summaries["grounding_violation"]
    assert {p["version"] for *_, p in rows} == {1}


async def test_an_ordinary_call_sends_nothing_at_once(db_url):
    async def soon(call) -> None:
        await run_tool(take_message, call, caller_name="Bo", message="Quote for a new faucet", urgency="soon")

    async def cold(call) -> None:
        await run_tool(capture_lead, call, name="Bo", need="A faucet quote", answers=COLD)

    assert await a_call(db_url, Notify(**OWNER), {"message": soon, "lead": cold}) == []


async def test_a_caller_no_model_heard_is_told_of_at_once_with_or_without_a_voicemail(db_url):
    async def busy_with_a_message(call) -> None:  # as agent/overflow.py and agent/voicemail.py leave it
        call.extras["all_lines_busy"] = True
        call.extras["voicemail"] = {"path": "/var/voicemail/x.wav", "seconds": 12.4}
        call.set_outcome("message")

    async def model_gone_silent_caller(call) -> None:  # as agent/fallback.py leaves it
        call.extras["model_unreachable"] = "connection refused"
        call.set_outcome("error")

    async def model_gone_put_through(call) -> None:
        call.extras["model_unreachable"] = "connection refused"
        call.set_outcome("escalated")

    sms = Notify(sms=["+15035550177"])
    [(kind, _, _, payload)] = await a_call(db_url, sms, {"busy": busy_with_a_message}, reason="all_lines_busy")
    assert kind == "assistant_unreachable"
    assert payload["summary"] == (
        "Your assistant could not take a call from +15035550123 because every line was busy; they left a 12 s"
        " voicemail: play it on the call's page in the console."
    )
    assert payload["detail"] == {"why": "all_lines_busy", "voicemail_seconds": 12.4}
    [(kind, _, _, payload)] = await a_call(db_url, sms, {"down": model_gone_silent_caller})
    assert kind == "assistant_unreachable" and payload["summary"].endswith(
        "because the AI model could not be reached; they left no message.")  # fmt: skip
    # a person took the call: nothing is left for the owner to pick up
    assert await a_call(db_url, sms, {"down": model_gone_put_through}) == []


async def test_the_brain_chooses_which_causes_are_sent_at_once(db_url):
    notify = Notify(**OWNER, at_once=["urgent_message"])
    rows = await a_call(db_url, notify, {"message": _urgent, "lead": _hot})
    assert {k for k, *_ in rows} == {"urgent_message"}


async def test_an_urgent_message_reaches_the_owners_webhook(db_url, pool, webhook_receiver):
    await a_call(db_url, Notify(webhook=webhook_receiver.url), {"message": _urgent})
    settings = load_settings(openai_api_key="unused", database_url=db_url, outbox_poll_s=0.02,
                             notify_webhook_secret=WEBHOOK_SECRET)  # fmt: skip
    sender = sender_from_settings(settings, pool, channels_from_settings(settings, pool))
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    try:
        async with asyncio.timeout(30):
            await webhook_receiver.expect(1).wait()
    finally:
        stop.set()
        await task
        await sender.aclose()
    [payload] = webhook_receiver.accepted
    assert payload["kind"] == "urgent_message"
    assert payload["detail"]["message"] == "Water is pouring through the ceiling"
    assert payload["detail"]["callback_number"] == "+15035550123"
    assert payload["call"]["outcome"] == "message"
