"""Texting the caller the business's address or directions, to a number read back and confirmed
first; the tool, not the model, holds that order and caps the texts per call."""

from __future__ import annotations

import json
from typing import Literal

from livekit.agents import RunContext, ToolError

from agent.call import CallContext
from agent.notify import caller_texts
from agent.tools.audit import receptionist_tool
from agent.tools.spoken import normalise_phone, region_of, say_digits

# a caller may want the address and the directions; more is someone using us to text strangers
MAX_TEXTS_PER_CALL = 2

@receptionist_tool
async def send_text(
    context: RunContext[CallContext], topic: Literal["address", "directions"], phone: str = "",
    number_confirmed: bool = False,
) -> str:
    """Text the caller our address, or directions to us, when they ask for it. Always confirm the
    number first: call this with number_confirmed false, read the number it returns back to the
    caller digit by digit and ask if it is right; only when they say yes, call it again with the same
    phone and number_confirmed true. Texts go only to the number the caller is calling from or to one
    they stated and confirmed.

    Args:
        topic: "address" or "directions".
        phone: The number to text, as the caller said it; leave empty for the number they are calling from.
        number_confirmed: True only after the caller confirmed the number you read back.
    """
    call = context.userdata
    if not call.brain.notify.caller_texts:
        raise ToolError("We do not send texts. Tell the caller the address instead.")
    if topic not in ("address", "directions"):
        raise ToolError('I can text the "address" or "directions" only.')
    if phone:
        number = normalise_phone(phone, region_of(call.brain.business.phone))
    elif call.caller_number:
        number = call.caller_number
    else:
        raise ToolError("There is no caller ID on this call: ask which number to text, digit by digit.")
    read_back: set[str] = call.extras.setdefault("text_numbers_read_back", set())
    sent: int = call.extras.get("texts_sent", 0)
    if sent >= MAX_TEXTS_PER_CALL:
        raise ToolError(f"I have already sent {sent} texts on this call; no more. Tell the caller the address.")
    if not number_confirmed or number not in read_back:
        # the number is confirmed only against what this tool read back, never on the model's word
        read_back.add(number)
        return json.dumps({
            "sent": False, "read_back": say_digits(number),
            "next": "Read this number back to the caller and ask if it is right. If they say yes, call "
            "send_text again with the same phone and number_confirmed true; if not, ask for the number.",
        })  # fmt: skip
    if call.journal is None:
        raise ToolError("I can't send texts right now. Tell the caller the address instead.")
    call.extras["texts_sent"] = sent + 1
    call.record(caller_texts.info(call, topic, number, sent + 1))
    return json.dumps({"sent": True, "topic": topic,
                       "say": "The text is on its way; it can take a minute to arrive."})  # fmt: skip
