"""Facts about the business, straight from its brain file: hours (holidays included), services and
prices, address, FAQ, and the current local time. The model phrases these; it never invents them."""

from __future__ import annotations

import json
import re
from typing import Any

from livekit.agents import RunContext, ToolError

from agent.brain import Brain, render, schedule
from agent.brain.schema.fields import WEEKDAYS
from agent.call import CallContext
from agent.tools.audit import receptionist_tool
from agent.tools.spoken import parse_day, say_day, say_time


def price_text(brain: Brain, name: str) -> str:
    service = brain.service(name)
    if service is None or service.price is None:
        return service.price_note if service and service.price_note else "quoted after we see the job"
    return render.price_text(service.price, brain.currency)


def service_facts(brain: Brain, service_name: str) -> dict[str, Any]:
    s = brain.service(service_name)
    if s is None:
        names = ", ".join(x.name for x in brain.services)
        raise ToolError(f"We don't offer {service_name!r} under that name. Our services are: {names}.")
    facts: dict[str, Any] = {
        "service": s.name,
        "duration_minutes": s.duration_minutes,
        "price": price_text(brain, s.name),
        "description": s.description,
        "bookable_by_phone": s.bookable,
    }
    if s.price_note:
        facts["price_note"] = s.price_note
    return facts


@receptionist_tool
async def get_opening_hours(context: RunContext[CallContext], day: str) -> str:
    """Opening hours for one day, holidays and closures included.

    Args:
        day: A date (YYYY-MM-DD), a weekday name ("saturday"), "today" or "tomorrow".
    """
    call = context.userdata
    today = call.now().date()
    d = parse_day(day, today)
    result: dict[str, Any] = {
        "day": say_day(d, today),
        "date": d.isoformat(),
        "weekday": WEEKDAYS[d.weekday()],
        "hours": schedule.describe_hours(call.brain, d),
        "open": bool(schedule.opening_hours_on(call.brain, d)),
    }
    if not result["open"]:
        nxt = schedule.next_open_day(call.brain, d)
        if nxt is not None:
            result["next_open_day"] = f"{say_day(nxt, today)} ({nxt.isoformat()}), {schedule.describe_hours(call.brain, nxt)}"
    return json.dumps(result)


@receptionist_tool
async def get_weekly_hours(context: RunContext[CallContext]) -> str:
    """The regular weekly opening hours (use get_opening_hours for a specific date or holiday)."""
    brain = context.userdata.brain
    week = {name: schedule.spoken_ranges(schedule.weekly_hours_on(brain, i)) for i, name in enumerate(WEEKDAYS)}
    return json.dumps(week)


@receptionist_tool
async def list_services(context: RunContext[CallContext]) -> str:
    """All services with their duration and price."""
    brain = context.userdata.brain
    return json.dumps([service_facts(brain, s.name) for s in brain.services])


@receptionist_tool
async def get_service_details(context: RunContext[CallContext], service: str) -> str:
    """Duration, price (or price range) and description of one service.

    Args:
        service: The service the caller asked about, in their words.
    """
    return json.dumps(service_facts(context.userdata.brain, service))


@receptionist_tool
async def get_business_details(context: RunContext[CallContext]) -> str:
    """The business's address, public phone number and website."""
    b = context.userdata.brain.business
    return json.dumps(
        {"name": b.name, "address": b.address, "phone": b.phone, "website": b.website, "about": b.about}
    )


_STOPWORDS = frozenset(
    "the and you your yours are was were what when where which who how why does did can could would "
    "should will with for from have has had this that these those there their them they our ours "
    "about any some into just also than then too very not but all get got out off its it's i'm "
    "do we us me my is am be of on in to at a an or if so it as by up".split()
)


def _words(text: str) -> set[str]:
    """Content words, singular: what a question is actually about."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words if w not in _STOPWORDS}


def _faq_score(asked_text: str, asked: set[str], faq: Any) -> int:
    """Keyword phrases the caller used count triple; otherwise at least two content words must match."""
    phrase_hits = sum(1 for k in faq.keywords if _words(k) and _words(k) <= asked)
    overlap = len(asked & _words(faq.question))
    if phrase_hits:
        return 3 * phrase_hits + overlap
    return overlap if overlap >= 2 else 0


@receptionist_tool
async def answer_faq(context: RunContext[CallContext], question: str) -> str:
    """Look up the business's own answer to a common question (payment, insurance, service area, ...).

    Args:
        question: The caller's question, in their words.
    """
    brain = context.userdata.brain
    asked = _words(question)
    if not asked:
        raise ToolError("Ask the caller to repeat their question.")
    best, best_score = None, 0
    for faq in brain.faq:
        score = _faq_score(question, asked, faq)
        if score > best_score:
            best, best_score = faq, score
    if best is None:
        raise ToolError(
            "The business has no answer on file for that. Do not guess: say you don't know, and offer "
            "to take a message so someone can call back with the answer."
        )
    return json.dumps({"question": best.question, "answer": best.answer})


@receptionist_tool
async def get_current_time(context: RunContext[CallContext]) -> str:
    """The business's current local date and time (to resolve 'today', 'tomorrow', 'this afternoon')."""
    now = context.userdata.now()
    return json.dumps(
        {
            "date": now.date().isoformat(),
            "weekday": WEEKDAYS[now.weekday()],
            "time": say_time(now),
            "iso": now.isoformat(timespec="minutes"),
            "timezone": context.userdata.brain.business.timezone,
        }
    )
