"""Proving a stated phone number on the call: a one-time code texted to it, read back by the caller.

A number the caller merely says is a claim (README, Privacy). A brain with `privacy.verify_by_text` lets
the caller prove it: the code goes only to that number, is never in what the model is told, is worth
nothing once the call ends, and a wrong code counts against the same guess budget as a wrong
confirmation code. Once proven, find_my_appointments treats the number as it treats a trusted caller ID.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from livekit.agents import RunContext, ToolError

from agent.call import CallContext
from agent.notify import caller_texts
from agent.tools.audit import receptionist_tool
from agent.tools.caller_bookings import MAX_FAILED_PROOFS, check_attempts
from agent.tools.spoken import normalise_phone, region_of, say_digits, spoken_digits

CODE_DIGITS = 6
CODE_LIFETIME = timedelta(minutes=10)
# two texts: one lost or slow text is common; more is someone using us to text a stranger
MAX_CODE_TEXTS = 2


@dataclass
class _PendingCode:
    number: str
    code: str
    expires: datetime


@receptionist_tool
async def text_number_code(context: RunContext[CallContext], phone: str, number_confirmed: bool = False) -> str:
    """Text a one-time code to a number the caller says is theirs, so they can prove it when they ask
    about bookings under a number other than the one they are calling from. Confirm the number first:
    call this with number_confirmed false, read back the digits it returns and ask if they are right;
    only when the caller says yes, call it again with the same phone and number_confirmed true. Then
    ask the caller to read you the code from the text, and pass it to confirm_number_code. You are
    never told the code.

    Args:
        phone: The number the caller says is theirs, as they said it.
        number_confirmed: True only after the caller confirmed the number you read back.
    """
    call = context.userdata
    brain = call.brain
    if not (brain.privacy.verify_by_text and brain.notify.caller_texts):
        raise ToolError("We cannot text codes. Ask for the appointment's confirmation code instead.")
    check_attempts(call)
    number = normalise_phone(phone, region_of(brain.business.phone))
    if call.has_proven(number):
        return json.dumps({"sent": False, "already_proven": True, "next": "Call find_my_appointments with this phone."})
    read_back: set[str] = call.extras.setdefault("code_numbers_read_back", set())
    if not number_confirmed or number not in read_back:
        # confirmed only against what this tool read back, never on the model's word
        read_back.add(number)
        return json.dumps({
            "sent": False, "read_back": say_digits(number),
            "next": "Read this number back and ask if it is right. If yes, call text_number_code again "
            "with the same phone and number_confirmed true; if not, ask for the number.",
        })  # fmt: skip
    sent: int = call.extras.get("number_codes_sent", 0)
    if sent >= MAX_CODE_TEXTS:
        raise ToolError("I have already texted two codes on this call; no more. Ask for the confirmation code instead.")
    if call.journal is None:
        raise ToolError("I can't send texts right now. Ask for the appointment's confirmation code instead.")
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    call.extras["number_codes_sent"] = sent + 1
    # a new code replaces the last: only the newest text's code proves the number
    call.extras["number_code"] = _PendingCode(number, code, call.clock() + CODE_LIFETIME)
    call.record(caller_texts.number_code(call, number, code, sent + 1))
    return json.dumps({"sent": True, "say": "I've sent a text with a six-digit code; it can take a minute to arrive. "
                       "Please read me the code when you have it."})  # fmt: skip


@receptionist_tool
async def confirm_number_code(context: RunContext[CallContext], code: str) -> str:
    """Check the code the caller read from the text that text_number_code sent. Right: the number is
    proven for this call, and find_my_appointments with that phone gives its bookings in full. Wrong:
    ask them to read it again (a few wrong codes end look-ups on this call).

    Args:
        code: The six digits the caller read out.
    """
    call = context.userdata
    check_attempts(call)
    pending: _PendingCode | None = call.extras.get("number_code")
    if pending is None:
        raise ToolError("No code has been texted on this call: call text_number_code first.")
    if call.clock() > pending.expires:
        call.extras.pop("number_code", None)
        raise ToolError("That code has expired. Offer to text a new one with text_number_code.")
    if not secrets.compare_digest(spoken_digits(code), pending.code):
        call.failed_proofs += 1
        left = MAX_FAILED_PROOFS - call.failed_proofs
        raise ToolError(
            "That is not the code we texted. Ask the caller to read it again, digit by digit."
            if left > 0 else "That is not the code we texted, and that was the last try on this call."
        )  # fmt: skip
    call.extras.pop("number_code", None)  # used once
    call.proven_numbers.add(pending.number)
    return json.dumps({"proven": True, "phone": pending.number,
                       "next": "Call find_my_appointments with this phone."})  # fmt: skip
