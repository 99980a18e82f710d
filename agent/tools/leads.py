"""Leads and messages: never lose a caller who wants something. Both are written through the call's
journal, so they survive a database outage and land in order with the transcript."""

from __future__ import annotations

import json
from typing import Literal

from livekit.agents import RunContext, ToolError

from agent.brain import Brain
from agent.call import CallContext
from agent.flows.steps import EscalationStep, Flow, last_run, record_step
from agent.store.journal.events import LeadRecord, MessageRecord
from agent.tools.audit import receptionist_tool
from agent.tools.spoken import clean_text, normalise_phone, region_of

Urgency = Literal["emergency", "urgent", "soon", "flexible"]


def lead_score(brain: Brain, answers: dict[str, str]) -> int:
    """0-100 from the brain's weighted questions: a qualifying answer earns the full weight, any other
    answer 30% of it, no answer nothing."""
    questions = brain.leads.questions
    total = sum(q.weight for q in questions)
    if not total:
        return 0
    points = 0.0
    for q in questions:
        given = (answers.get(q.key) or "").strip().lower()
        if not given:
            continue
        if q.qualifying is None:
            points += q.weight
        elif any(ok.lower() in given or given in ok.lower() for ok in q.qualifying):
            points += q.weight
        else:
            points += 0.3 * q.weight
    return round(100 * points / total)


def _phone_or_caller_id(call: CallContext, phone: str) -> str | None:
    if phone.strip():
        return normalise_phone(phone, region_of(call.brain.business.phone))
    return call.caller_number


@receptionist_tool
async def capture_lead(
    context: RunContext[CallContext],
    name: str,
    need: str,
    answers: dict[str, str],
    phone: str = "",
    urgency: Urgency = "flexible",
) -> str:
    """Record a prospective customer with their answers to the qualification questions.

    Args:
        name: The caller's name.
        need: What they need, in a sentence.
        answers: Answers keyed by question key (see the lead questions in your instructions).
        phone: Their callback number; the caller ID is used when empty.
        urgency: How soon they need it.
    """
    call = context.userdata
    brain = call.brain
    name, need = clean_text(name, 120), clean_text(need, 1000)
    if not name or not need:
        raise ToolError("I need at least the caller's name and what they need.")
    known = {q.key for q in brain.leads.questions}
    unknown = sorted(set(answers) - known)
    if unknown:
        raise ToolError(f"Unknown question keys {unknown}; use only: {sorted(known)}.")
    e164 = _phone_or_caller_id(call, phone)
    if e164 is None:
        raise ToolError("Ask for a callback number.")
    clean = {k: clean_text(str(v), 500) for k, v in answers.items() if clean_text(str(v), 500)}
    score = lead_score(brain, clean)
    call.record(
        LeadRecord(
            call_id=call.call_id, business=brain.business.name, score=score, name=name,
            phone=e164, need=need, urgency=urgency, answers=clean,
        )
    )  # fmt: skip
    call.set_outcome("lead")
    missing = [q.question for q in brain.leads.questions if q.key not in clean]
    return json.dumps(
        {"saved": True, "score": score, "hot": score >= brain.leads.hot_score, "still_to_ask": missing}
    )


@receptionist_tool
async def take_message(
    context: RunContext[CallContext],
    caller_name: str,
    message: str,
    phone: str = "",
    callback_requested: bool = True,
    urgency: Urgency = "soon",
) -> str:
    """Take a message (or callback request) for the office when you can't do what the caller wants.

    Args:
        caller_name: The caller's name.
        message: The message, in a sentence or two.
        phone: Their callback number; the caller ID is used when empty.
        callback_requested: Whether they want a call back.
        urgency: How soon they need an answer.
    """
    call = context.userdata
    message, caller_name = clean_text(message, 2000), clean_text(caller_name, 120)
    if not message:
        raise ToolError("Ask the caller what message they want to leave.")
    e164 = _phone_or_caller_id(call, phone)
    if e164 is None and callback_requested:
        raise ToolError("Ask for a callback number.")
    call.record(
        MessageRecord(
            call_id=call.call_id, business=call.brain.business.name, body=message,
            caller_name=caller_name or None, phone=e164,
            callback_requested=callback_requested, urgency=urgency,
        )
    )  # fmt: skip
    call.set_outcome("message")
    if last_run(call, Flow.ESCALATION)[-1:] == [EscalationStep.NOBODY_OPEN]:
        # instead of the person nobody could be (a failed transfer's message is its task's step)
        record_step(call, Flow.ESCALATION, EscalationStep.MESSAGE)
    return json.dumps({"saved": True, "callback_number": e164})
