"""escalate_to_human on a brain with departments: the reason (or the department the caller asked for)
picks where the call goes, a closed department gives way to the next open one that takes the reason,
and with none open the caller is offered a message. Graded on the hand-off the call would run (where
the transfer goes, what the caller hears first) and on the call report."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from itertools import product
from typing import Any

import pytest
from livekit.agents import ToolError

from agent.brain import Brain, departments, load_brain
from agent.brain.schema.escalation import REASONS, Department
from agent.brain.transfer import TransferKind
from agent.call import CallContext
from agent.call_end import finish_call
from agent.flows import steps as flows
from agent.flows.escalation import EscalationGate, Handoff
from agent.flows.steps import EscalationStep
from agent.tools.escalation import escalate_to_human, plan_handoff
from agent.tools.leads import take_message
from simulator.line import SimulatedLine
from tests.tools.conftest import PINNED_NOW, REPO, TZ, pinned_call, run_tool

ON_CALL = "tel:+15035550188"
BILLING = "tel:+15035550192"
TUESDAY_EVENING = datetime(2026, 11, 24, 20, 0, tzinfo=TZ)  # billing (8-5 weekdays) is closed


def a_call(brain: Brain, at: datetime = PINNED_NOW) -> CallContext:
    return pinned_call(brain, clock=lambda: at, line=SimulatedLine())


async def escalate(call: CallContext, **args: Any) -> Handoff | dict[str, Any]:
    """The hand-off escalate_to_human would run, or what the model is told when nobody takes the call."""
    args.setdefault("summary", "Ana, about last week's visit.")
    plan = plan_handoff(call, **args)
    return plan if isinstance(plan, Handoff) else json.loads(plan)


def goes_to(out: Handoff | dict[str, Any]) -> str | None:
    return out.destination if isinstance(out, Handoff) else None


def report(call: CallContext) -> dict[str, Any]:
    finish_call(call, reason="caller_hangup")
    assert call.report is not None
    return call.report["escalation"]


async def test_a_pricing_dispute_goes_to_billing(plumbing: Brain) -> None:
    call = a_call(plumbing)  # Tuesday 10:00
    out = await escalate(call, reason="pricing_dispute")
    assert isinstance(out, Handoff) and out.department == "billing"
    assert out.say_now == "One moment, I'm connecting you with our billing office."
    assert goes_to(out) == BILLING
    assert report(call)["department"] == "billing"


async def test_an_emergency_goes_to_the_on_call_plumber(plumbing: Brain) -> None:
    call = a_call(plumbing, TUESDAY_EVENING)
    out = await escalate(call, reason="emergency")
    assert out.say_now == "One moment, I'm connecting you with our on-call plumber."
    assert goes_to(out) == ON_CALL


async def test_the_caller_asking_for_billing_by_name_reaches_billing(plumbing: Brain) -> None:
    call = a_call(plumbing)
    out = await escalate(call, reason="explicit_request", department="the accounts department")
    assert goes_to(out) == BILLING


async def test_part_of_a_name_is_enough_when_only_one_department_has_it(plumbing: Brain) -> None:
    call = a_call(plumbing)
    out = await escalate(call, reason="explicit_request", department="the plumber")
    assert goes_to(out) == ON_CALL


async def test_billing_asked_for_after_hours_gives_way_to_the_on_call_plumber(
    plumbing: Brain,
) -> None:
    call = a_call(plumbing, TUESDAY_EVENING)
    out = await escalate(call, reason="explicit_request", department="billing")
    assert goes_to(out) == ON_CALL
    assert "billing is closed now" in (out.note or "")
    assert report(call) | {"summary": None} == {
        "reason": "explicit_request", "summary": None, "department": "on-call plumber",
        "destination": ON_CALL, "result": "not_attempted", "closed": ["billing"],
    }  # fmt: skip


async def test_a_pricing_dispute_with_billing_closed_becomes_a_message(plumbing: Brain) -> None:
    # nobody else takes pricing disputes: the on-call plumber is not a billing office
    call = a_call(plumbing, TUESDAY_EVENING)
    out = await escalate(call, reason="pricing_dispute")
    assert not isinstance(out, Handoff) and not out["transferring"] and "take_message" in out["next"]
    esc = report(call)
    assert (esc["department"], esc["result"], esc["closed"]) == (
        "billing",
        "people_unavailable",
        ["billing"],
    )


def with_front_desk(plumbing: Brain, *, default: str | None = None) -> Brain:
    """The plumber with a front desk first in line for explicit requests, in the business's hours."""
    front_desk = Department(name="front desk", transfer_to="tel:+15035550193",
                            reasons=["explicit_request", "complaint"], say_before="Putting you through to the front desk.")  # fmt: skip
    listed = [front_desk, *plumbing.escalation.departments]
    if default is not None:
        listed = [d.model_copy(update={"default": d.name == default}) for d in listed]
    escalation = plumbing.escalation.model_copy(update={"departments": listed})
    return plumbing.model_copy(update={"escalation": escalation})


async def test_a_closed_department_gives_way_to_the_next_that_takes_the_reason(
    plumbing: Brain,
) -> None:
    brain = with_front_desk(plumbing)
    day, night = a_call(brain), a_call(brain, TUESDAY_EVENING)
    day_out = await escalate(day, reason="explicit_request")
    night_out = await escalate(night, reason="explicit_request")
    assert goes_to(day_out) == "tel:+15035550193"  # the front desk is open
    assert goes_to(night_out) == ON_CALL  # closed at 8 PM: the next in the list
    assert report(night)["closed"] == ["front desk"]


async def test_the_default_department_takes_a_reason_nobody_lists(plumbing: Brain) -> None:
    brain = with_front_desk(plumbing, default="front desk")
    call = a_call(brain)
    out = await escalate(
        call, reason="emergency"
    )  # the on-call plumber lists it: the default is not needed
    assert goes_to(out) == ON_CALL
    billing_free = brain.model_copy(update={"escalation": brain.escalation.model_copy(update={"departments": [
        d.model_copy(update={"reasons": [r for r in d.reasons if r != "billing"]}) for d in brain.escalation.departments
    ]})})  # fmt: skip
    call = a_call(billing_free)
    out = await escalate(call, reason="billing")
    assert goes_to(out) == "tel:+15035550193"


async def test_a_department_the_brain_does_not_list_is_refused(plumbing: Brain) -> None:
    call = a_call(plumbing)
    with pytest.raises(ToolError, match="the departments are on-call plumber, billing"):
        await run_tool(escalate_to_human, call, reason="explicit_request", summary="x",
                       department="5551234567")  # fmt: skip
    assert "escalation" not in call.extras and not call.flow_steps  # nothing was started


async def test_a_single_transfer_to_still_transfers_every_reason() -> None:
    dental = load_brain(REPO / "brains" / "dental.yaml")
    monday_morning = datetime(2026, 11, 23, 9, 0, tzinfo=dental.tz)
    call = a_call(dental, monday_morning)
    out = await escalate(call, reason="pricing_dispute")
    assert out.say_now == "Let me connect you with our front desk, one moment please."
    assert goes_to(out) == "sip:frontdesk@lakeviewfamilydental.example"
    assert report(call)["department"] == "team"


def test_a_department_marked_warm_is_transferred_warm_and_the_others_cold(plumbing: Brain) -> None:
    billing_warm = [d.model_copy(update={"transfer": TransferKind.warm}) if d.name == "billing" else d
                    for d in plumbing.escalation.departments]  # fmt: skip
    brain = plumbing.model_copy(
        update={"escalation": plumbing.escalation.model_copy(update={"departments": billing_warm})}
    )
    on_call, billing = brain.escalation.departments
    assert departments.transfer_kind(brain, billing) is TransferKind.warm
    assert departments.transfer_kind(brain, on_call) is TransferKind.cold
    # and nothing changes for a brain that says nothing
    assert {departments.transfer_kind(plumbing, d) for d in plumbing.escalation.departments} == {TransferKind.cold}


def test_warm_transfer_true_makes_the_single_team_warm() -> None:
    dental = load_brain(REPO / "brains" / "dental.yaml")  # transfer_to with warm_transfer: true
    [team] = dental.escalation.destinations
    assert departments.transfer_kind(dental, team) is TransferKind.warm


async def test_no_reason_name_or_hour_reaches_a_number_the_brain_does_not_list(
    plumbing: Brain,
) -> None:
    listed = {d.transfer_to for d in plumbing.escalation.destinations}
    asked = [None, "billing", "on-call plumber", "tel:+15551234567", "transfer to 555 123 4567"]
    week = [PINNED_NOW + timedelta(hours=h) for h in range(0, 7 * 24, 5)]
    for reason, department, at in product(REASONS, asked, week):
        call = a_call(plumbing, at)
        try:
            out = await escalate(call, reason=reason, department=department)
        except ToolError:
            continue
        assert goes_to(out) is None or goes_to(out) in listed, (
            reason,
            department,
            at,
        )


async def test_a_reason_no_department_takes_becomes_a_message(plumbing: Brain) -> None:
    listed = [d.model_copy(update={"reasons": [r for r in d.reasons if r != "billing"]})
              for d in plumbing.escalation.departments]  # fmt: skip
    brain = plumbing.model_copy(
        update={"escalation": plumbing.escalation.model_copy(update={"departments": listed})}
    )
    call = a_call(brain)
    out = await escalate(call, reason="billing")
    assert not isinstance(out, Handoff) and not out["transferring"] and "take_message" in out["next"]
    esc = report(call)
    assert (esc["department"], esc["result"]) == (None, "no_destination")


class _HandOver:
    """What the escalation's gate reaches of its task: the hand-off, and how it ends."""

    def __init__(self, handoff: Handoff) -> None:
        self.handoff = handoff
        self.result: Any = None
        self.finished = False

    def finish(self, result: Any) -> None:
        self.result, self.finished = result, True


async def test_a_message_during_the_transfer_is_refused_and_taken_once_it_failed(plumbing: Brain) -> None:
    call = a_call(plumbing)
    handoff = await escalate(call, reason="explicit_request")
    assert isinstance(handoff, Handoff)
    task = _HandOver(handoff)
    gate = EscalationGate(call, task)  # type: ignore[arg-type]
    call.flow = gate
    gate.transferring()
    args = {"caller_name": "Ana", "message": "Call me back", "urgency": "soon"}
    with pytest.raises(ToolError, match="transfer is under way"):
        await run_tool(take_message, call, **args)
    assert call.tool_log[-1].error is not None and task.result is None  # nothing was taken
    gate.transferred(accepted=False)
    await run_tool(take_message, call, **args)
    assert task.result.ended is EscalationStep.MESSAGE
    assert flows.report(call)["escalation"] == {
        "steps": ["requested", "transferring", "failed", "message_taken"],
        "refused": [{"at": "transferring", "missing": "transfer_failed"}],
    }
