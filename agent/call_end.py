"""The end of a call, whatever ended it (the caller, the agent, a transfer, the worker): the outcome
settled, the call's report, the operator's metrics, the call row finalised through the journal, and
what the owner must hear at once. Once per call."""

from __future__ import annotations

import logging
import time

from agent.call import CallContext
from agent.call_report import build_report
from agent.metrics import record_call
from agent.notify.at_once import at_once
from agent.store.journal import events as j

log = logging.getLogger("receptionist.call")


def finish_call(call: CallContext, *, reason: str) -> None:
    """Finalise the call row once; `reason` is the end reason when nothing set one before."""
    if call.finished:
        return
    call.finished = True
    if call.outcome is None:
        # nobody booked, qualified, messaged or escalated: the caller left without an outcome
        call.outcome = "abandoned"
    call.end_reason = call.end_reason or reason
    call.ended_wall = time.time()
    try:
        call.report = build_report(call)
    except Exception:  # a report bug must never cost the call its ending
        log.exception("call report failed for %s", call.call_id)
    try:
        record_call(call)
    except Exception:  # nor a metrics bug
        log.exception("call metrics failed for %s", call.call_id)
    call.record(
        j.CallEnded(
            call_id=call.call_id,
            ended_at=call.clock(),
            outcome=call.outcome,
            end_reason=call.end_reason,
            summary=call.report,
        )
    )
    # what the owner must hear now, journaled after the call's end so it is as durable as the call
    try:
        for notification in at_once(call):
            call.record(notification)
    except Exception:  # a notification bug must never cost the call its records
        log.exception("notifications failed for %s", call.call_id)
