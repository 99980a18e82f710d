"""The call report's optional prose summary: a few sentences for the owner, written by a text model
(OpenAI Chat Completions at OPENAI_BASE_URL) from the recorded transcript once the caller is gone.

Off unless CALL_SUMMARY_MODEL is set. The structured report never waits on it or depends on it: it is
already journaled when the summary is asked for, and a model that is slow (CALL_SUMMARY_TIMEOUT) or
fails leaves the report as it was, with the reason in the log.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from openai import AsyncOpenAI

from agent.store.journal.events import CallSummarised

if TYPE_CHECKING:
    from agent.call import CallContext
    from agent.settings import Settings

log = logging.getLogger("receptionist.call_summary")

SUMMARY_INSTRUCTIONS = (
    "You summarise a phone call between a business's AI receptionist and a caller, for the business "
    "owner. Write two or three plain sentences: who called and what they wanted, what was done "
    "(booked, message taken, handed to a person), and anything the owner must follow up. Use only "
    "what the transcript says; never add facts."
)
_MAX_SUMMARY_TOKENS = 200


def summary_prompt(call: CallContext) -> str:
    """What the model is shown: the business, how the call ended, and every recorded turn in order."""
    lines = [
        f"Business: {call.brain.business.name}",
        f"Outcome: {call.outcome} (ended: {call.end_reason})",
        "",
    ]
    lines += [f"{'Caller' if t.role == 'caller' else 'Agent'}: {t.text}" for t in call.transcript]
    return "\n".join(lines)


async def add_prose_summary(
    call: CallContext, settings: Settings, *, base_url: str | None = None
) -> None:
    """Ask the summary model about the finished call and add its answer to the stored report
    (`prose`). Returns without one when it is off, when there is nothing to summarise, or when the
    model fails or takes longer than the limit; never raises."""
    model = settings.call_summary_model
    if not model or call.report is None:
        return
    if not call.transcript:
        log.info("call %s: no prose summary: nothing was said", call.call_id)
        return
    client = AsyncOpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=base_url or settings.openai_base_url,
        max_retries=0,  # one try inside the limit: a retry would only push past it
        timeout=settings.call_summary_timeout,
    )
    try:
        # the whole exchange within the limit, not each read (the client's own timeout is per read)
        async with asyncio.timeout(settings.call_summary_timeout):
            completion = await client.chat.completions.create(
                model=model,
                messages=[
                    {"role": "system", "content": SUMMARY_INSTRUCTIONS},
                    {"role": "user", "content": summary_prompt(call)},
                ],
                max_completion_tokens=_MAX_SUMMARY_TOKENS,
            )
    except TimeoutError:
        log.warning(
            "call %s: no prose summary: %s took longer than %.1f s",
            call.call_id, model, settings.call_summary_timeout,
        )  # fmt: skip
        return
    except Exception as e:  # noqa: BLE001 - any failure leaves the report as it is
        log.warning("call %s: no prose summary: %s failed: %s", call.call_id, model, e)
        return
    finally:
        await client.close()
    text = (completion.choices[0].message.content or "").strip() if completion.choices else ""
    if not text:
        log.warning("call %s: no prose summary: %s answered with no text", call.call_id, model)
        return
    prose: dict[str, Any] = {"text": text, "model": completion.model}
    if completion.usage is not None:
        prose["input_tokens"] = completion.usage.prompt_tokens
        prose["output_tokens"] = completion.usage.completion_tokens
    call.report["prose"] = prose
    call.record(CallSummarised(call_id=call.call_id, prose=prose))
