"""The call report: what a finished call did, how it felt to the caller, what it cost and what to look
at, built from what the call recorded (transcript, tool calls, guard violations, the model's billed
usage), never from the model's memory.

Written once, when the call ends, into `calls.summary` (JSON, `version` 1, shape in README "Call
reports"); building it is a pass over the call's records in memory, so the hang-up never waits on it.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from typing import TYPE_CHECKING, Any

from agent.brain.languages import guess_language
from agent.call import CALLER_HANGUP
from agent.call_cost import usage_and_cost
from agent.flows import steps as flows

if TYPE_CHECKING:
    from agent.call import CallContext, ToolCallLog, TurnLog

REPORT_VERSION = 1

DEAD_AIR_S = 2.0  # the caller waiting longer than this for the agent is worth a look
NO_OUTCOME_S = 60.0
BARGE_INS_FLAGGED = 3

# a request for a person, not a question about one ("am I talking to a real person?" is not a request)
_HUMAN = re.compile(
    r"\b(talk|speak|transfer|connect|put me through)\b[^.?!]{0,30}\b(human|person|someone|somebody|"
    r"manager|supervisor|representative|operator|owner)\b"
    r"|\b(want|need|get me|give me|can i have)\b[^.?!]{0,20}\b(human|real person|manager|supervisor|"
    r"representative|operator)\b",
    re.I,
)
_FRUSTRATION = re.compile(
    r"\b(frustrat\w*|ridiculous|outrageous|annoy\w*|useless|stupid|unbelievable|terrible|awful|upset|angry|"
    r"not listening|already (?:told|said)|for the last time|what the hell|are you kidding|come on)\b",
    re.I,
)
_CORRECTION = re.compile(
    r"(^\s*no[,.!]|\bi said\b|\bthat'?s not what i\b|\bthat'?s (?:wrong|not right)\b|\bnot what i (?:said|asked)\b)",
    re.I,
)
# attempts to talk the agent out of its rules: claimed authority, "modes", hidden instructions,
# other callers' data, prices or transfers the brain does not allow (English and Spanish)
_MANIPULATION = re.compile(
    r"\b(admin|developer|god|debug|maintenance) mode\b|\bignore (all |your |the |any )?(previous |prior )?"
    r"(instructions|rules|prompt)|\bsystem prompt\b|\bsystem:|\byou are now\b|\bpretend (you'?re|to be)\b|"
    r"\bi'?m the (owner|manager|boss|admin)\b|\bthis is the owner\b|\bthe owner (said|says|told)\b|"
    r"\b(last|previous|other) (caller|callers|customer|customers)'?s?\b|\bread me (all|every|today'?s)\b|"
    r"\bfor free\b|\b\d+ ?(%|percent) (off|discount)\b|\btransfer me to\s*\+?\d|\bforward (me|all calls) to\b|"
    r"\bignora (tus|las) instrucciones\b|\bmodo (administrador|desarrollador)\b",
    re.I,
)
_WORD = re.compile(r"[a-z0-9']+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _result(entry: ToolCallLog) -> Any:
    if entry.result is None:
        return None
    try:
        return json.loads(entry.result)
    except ValueError:
        return entry.result


def _what_happened(call: CallContext) -> dict[str, Any]:
    bookings: list[dict[str, Any]] = []
    lead: dict[str, Any] | None = None
    message: dict[str, Any] | None = None
    for entry in call.tool_log:
        out = _result(entry)
        if entry.error is not None or not isinstance(out, dict):
            continue
        if entry.name == "book_appointment":
            bookings.append({"action": "booked", "code": out.get("confirmation_code"),
                             "service": out.get("service"), "start": out.get("start")})  # fmt: skip
        elif entry.name == "reschedule_appointment":
            bookings.append({"action": "rescheduled", "code": out.get("confirmation_code"),
                             "from_code": entry.arguments.get("confirmation_code"),
                             "start": entry.arguments.get("new_start")})  # fmt: skip
        elif entry.name == "cancel_appointment":
            bookings.append({"action": "cancelled", "code": out.get("confirmation_code"),
                             "service": out.get("service")})  # fmt: skip
        elif entry.name == "capture_lead":
            lead = {"score": out.get("score"), "hot": out.get("hot"),
                    "answers": entry.arguments.get("answers") or {}, "urgency": entry.arguments.get("urgency")}  # fmt: skip
        elif entry.name == "take_message":
            message = {"urgency": entry.arguments.get("urgency", "soon"),
                       "callback_requested": entry.arguments.get("callback_requested", True),
                       "callback_number": out.get("callback_number")}  # fmt: skip
    escalation = _escalation(call)
    if escalation is not None and message is not None and escalation["result"] != "accepted":
        escalation["then"] = "message"
    return {"bookings": bookings, "lead": lead, "message": message, "escalation": escalation}


def _escalation(call: CallContext) -> dict[str, Any] | None:
    """The last request for a person: where it went (escalate_to_human's plan, in the call's extras)
    and how it ended, from the steps its hand-over reached."""
    asked = call.extras.get("escalation")
    if asked is None:
        return None
    keys = ("reason", "summary", "department", "destination")
    escalation = {k: asked.get(k) for k in keys}
    steps = flows.last_run(call, flows.Flow.ESCALATION)
    if "result" in asked:  # nobody could take it
        escalation["result"] = asked["result"]
    elif flows.EscalationStep.ACCEPTED in steps:
        escalation["result"] = "accepted"
    elif flows.EscalationStep.FAILED in steps:
        escalation["result"] = "refused"
        escalation["detail"] = call.extras.get("transfer_failed")
    elif flows.EscalationStep.TRANSFERRING in steps:
        escalation["result"] = "caller_left"  # hung up on hold while the person was called
    else:
        escalation["result"] = "not_attempted"  # the caller left before the hand-off line ended
    # warm or cold as the phone line carried it out (warm nobody took goes cold), and why; what the
    # person taking over was told; the departments passed over as closed
    for key in ("transfer", "warm_failed", "briefing", "closed"):
        if asked.get(key):
            escalation[key] = asked[key]
    return escalation


def _timing(call: CallContext) -> tuple[dict[str, Any], list[tuple[int, float]]]:
    """The report's timings, and each caller turn's wait for the reply (seq, seconds) for the flags."""
    turns = call.transcript
    agent = [t for t in turns if t.role == "agent"]
    caller = [t for t in turns if t.role == "caller"]
    gaps: list[tuple[int, float]] = []  # (caller turn seq, seconds the caller waited)
    for i, t in enumerate(turns):
        if t.role != "caller":
            continue
        if turns[i + 1 : i + 2] and turns[i + 1].role == "caller":
            # they went on before any reply (one cut off as it began left no words): they waited
            # only after their last words
            continue
        reply = next((a for a in turns[i + 1 :] if a.role == "agent"), None)
        if reply is not None:
            gaps.append((t.seq, max(0.0, reply.started_at - t.ended_at)))
    talk = {
        "agent": sum(max(0.0, t.ended_at - t.started_at) for t in agent),
        "caller": sum(max(0.0, t.ended_at - t.started_at) for t in caller),
    }
    total = talk["agent"] + talk["caller"]
    started = call.started_wall
    first_agent = agent[0].started_at if agent else None
    last = max((t.ended_at for t in turns), default=None)
    ended = call.ended_wall or last
    timing = {
        "to_greeting_s": _r(first_agent - started) if first_agent is not None and started else None,
        "duration_s": _r(ended - started) if ended is not None and started else None,
        "talk_s": {k: _r(v) for k, v in talk.items()},
        "agent_talk_share": _r(talk["agent"] / total) if total else None,
        "response_gap_s": {
            "p50": _r(statistics.median(g for _, g in gaps)) if gaps else None,
            "max": _r(max(g for _, g in gaps)) if gaps else None,
            "turns": len(gaps),
            "each": [_r(g) for _, g in gaps],  # in turn order: the operator metrics' histogram
        },
        "longest_dead_air_s": _r(max((g for _, g in gaps), default=0.0)),
        "barge_ins": sum(1 for t in agent if t.interrupted),
    }
    return timing, gaps


def _r(x: float) -> float:
    return round(x, 3)


def _flags(call: CallContext, timing: dict[str, Any], gaps: list[tuple[int, float]]) -> list[dict[str, Any]]:
    flags: list[dict[str, Any]] = []

    def flag(name: str, turns: list[int], **detail: Any) -> None:
        flags.append({"flag": name, "turns": turns, **detail})

    caller: list[TurnLog] = [t for t in call.transcript if t.role == "caller"]
    agent: list[TurnLog] = [t for t in call.transcript if t.role == "agent"]
    asked = [t.seq for t in caller if _HUMAN.search(t.text)]
    escalated_on_request = any(
        e.name == "escalate_to_human" and e.arguments.get("reason") == "explicit_request" for e in call.tool_log
    )
    if asked or escalated_on_request:
        flag("asked_for_human", asked)
    repeats = []
    said = [_words(t.text) for t in caller]
    for i, w in enumerate(said):
        if len(w) >= 3 and any(len(w & p) / len(w | p) >= 0.8 for p in said[:i]):
            repeats.append(caller[i].seq)
    if repeats:
        flag("repeated_request", repeats)
    frustrated = [t.seq for t in caller if _FRUSTRATION.search(t.text)]
    if frustrated:
        flag("frustration", frustrated)
    barged = [t.seq for t in agent if t.interrupted]
    if len(barged) >= BARGE_INS_FLAGGED:
        flag("barge_ins", barged, count=len(barged))
    if call.violations:
        flag("grounding_violation", sorted({v["turn_seq"] for v in call.violations}),
             kinds=sorted({v["kind"] for v in call.violations}))  # fmt: skip
    failed = [e for e in call.tool_log if e.error is not None]
    if failed:
        flag("tool_error", [], tools=[e.name for e in failed])
        twice = sorted(name for name, n in Counter(e.name for e in failed).items() if n >= 2)
        if twice:
            flag("tool_failed_twice", [], tools=twice)
    corrected = [t.seq for t in caller if _CORRECTION.search(t.text)]
    if corrected:
        flag("caller_corrected_agent", corrected)
    dead = [seq for seq, gap in gaps if gap > DEAD_AIR_S]
    if dead:
        flag("dead_air", dead, longest_s=timing["longest_dead_air_s"])
    manipulation = [t.seq for t in caller if _MANIPULATION.search(t.text)]
    if manipulation:
        flag("manipulation_attempt", manipulation)
    if call.failed_proofs:
        # codes or numbers that matched no booking: a caller who lost their code, or someone guessing
        flag("identity_check_failed", [], attempts=call.failed_proofs)
    spoken = _caller_language(call)
    if spoken is not None and spoken not in call.brain.languages:
        # a caller the business cannot serve in their language: the agent could only take a message
        flag("language_not_served", [t.seq for t in caller], language=spoken)
    stale = call.extras.get("calendar_stale")
    if stale:
        # availability came from our appointments and an old copy of the owner's calendar
        flag("calendar_stale", [], **stale)
    duration = timing["duration_s"]
    if duration is not None and duration > NO_OUTCOME_S and call.outcome in (None, "abandoned", "error"):
        flag("no_outcome", [], after_s=duration)
    greeting_cut = not agent or (agent[0].interrupted and not caller)
    if call.end_reason == CALLER_HANGUP and not caller and greeting_cut:
        flag("hung_up_during_greeting", [])
    return flags


def _caller_language(call: CallContext) -> str | None:
    """The caller's language guessed from the common words in their transcript (en, es, fr, de, it,
    pt; None when unsure): what they said, not what the model chose to answer in."""
    return guess_language(" ".join(t.text for t in call.transcript if t.role == "caller"))


def build_report(call: CallContext) -> dict[str, Any]:
    """The report of a finished call (outcome and end reason already set)."""
    timing, gaps = _timing(call)
    flags = _flags(call, timing, gaps)
    # telephony minutes only for a call with a phone line (not a console run)
    usage, cost = usage_and_cost(
        call.usage, call.prices, duration_s=timing["duration_s"], phone=call.line is not None
    )
    return {
        "version": REPORT_VERSION,
        "outcome": call.outcome,
        "end_reason": call.end_reason,
        "language": _caller_language(call),
        **_what_happened(call),
        "timing": timing,
        "turns": {"caller": sum(t.role == "caller" for t in call.transcript),
                  "agent": sum(t.role == "agent" for t in call.transcript)},  # fmt: skip
        "tools": {"calls": len(call.tool_log), "errors": sum(e.error is not None for e in call.tool_log)},
        "flags": flags,
        "usage": usage,
        "cost": cost,
        **_recording(call),
        **({"flows": flows.report(call)} if call.flow_steps else {}),
    }


def _recording(call: CallContext) -> dict[str, Any]:
    """Whether the caller let the call be recorded; only for calls that were (the file is on the row)."""
    rec = call.recording
    if rec is None:
        return {}
    stopped = rec.stopped_at
    after = _r(stopped - call.started_wall) if stopped is not None and call.started_wall else None
    return {"recording": {"consented": rec.consented, "stopped_at_s": after}}
