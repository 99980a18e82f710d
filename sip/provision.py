"""Idempotent provisioning of the phone path: LiveKit inbound trunk + dispatch rules, Twilio trunk.

`python -m sip.provision [--brains brains/] [--dry-run | --check] [--json] [--only livekit|twilio]`
Each run reads the brain files, compares LiveKit and Twilio with what they should hold, and
creates, updates or deletes only what drifted; a second run changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from google.protobuf.duration_pb2 import Duration
from livekit import api

from sip.plan import (
    SIDES,
    Action,
    Business,
    Plan,
    ProvisionError,
    ProvisionSettings,
    Side,
    diff,
    load_businesses,
    load_settings,
)

MANAGED_BY = "sip.provision"  # marker in metadata: only objects carrying it are ever deleted
ROOM_PREFIX = "call-"
RULE_PREFIX = "receptionist-"
FALLBACK_RULE = "receptionist-fallback"
PENDING_ID = "<new trunk>"


# ---------------------------------------------------------------- desired LiveKit state


@dataclass(frozen=True)
class DesiredRule:
    name: str
    numbers: tuple[str, ...]
    metadata: str
    attributes: dict[str, str]
    agent_metadata: str
    business: str | None


def _json(data: dict[str, Any]) -> str:
    # stable serialisation so a re-run compares equal byte for byte
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def desired_trunk(
    settings: ProvisionSettings, businesses: Sequence[Business]
) -> api.SIPInboundTrunkInfo:
    numbers = sorted(n for b in businesses for n in b.numbers)
    max_minutes = max(b.max_call_minutes for b in businesses) + settings.sip_max_call_grace_minutes
    password = settings.sip_auth_password.get_secret_value() if settings.sip_auth_password else ""
    return api.SIPInboundTrunkInfo(
        name=settings.livekit_trunk_name,
        metadata=_json({"managed_by": MANAGED_BY}),
        numbers=numbers,
        allowed_addresses=sorted(settings.sip_allowed_cidrs),
        auth_username=settings.sip_auth_username or "",
        auth_password=password,
        # livekit-sip already maps X-Twilio-CallSid / X-Twilio-AccountSid to sip.twilio.callSid /
        # sip.twilio.accountSid on every call. Twilio's STIR/SHAKEN verdict on the caller ID it does
        # not: the worker needs it to know what the caller ID proves (README, Privacy).
        headers_to_attributes={"X-Twilio-VerStat": "sip.twilio.verstat"},  # agent.telephony reads it
        krisp_enabled=False,  # the Realtime model does its own noise handling; Krisp is Cloud-only
        ringing_timeout=Duration(seconds=settings.sip_ringing_timeout_seconds),
        # whole seconds, and a brain's limit may be a fraction of a minute
        max_call_duration=Duration(seconds=math.ceil(max_minutes * 60)),
    )


def desired_rules(settings: ProvisionSettings, businesses: Sequence[Business]) -> list[DesiredRule]:
    """One rule per business, restricted to its dialed numbers, plus a number-less fallback.

    Per-business rules carry the business id in the agent dispatch metadata and as a participant
    attribute, so the worker knows the brain before reading SIP attributes, and each business can
    be changed without touching the others. LiveKit compares a rule's numbers with the To user
    verbatim (no normalisation); the fallback catches a carrier that sends another format, and the
    worker then resolves the brain from sip.trunkPhoneNumber.
    """
    rules = [
        DesiredRule(
            name=f"{RULE_PREFIX}{b.id}",
            numbers=tuple(sorted(b.numbers)),
            metadata=_json({"managed_by": MANAGED_BY, "business": b.id, "name": b.name}),
            attributes={"receptionist.business": b.id},
            agent_metadata=_json({"business": b.id, "numbers": sorted(b.numbers)}),
            business=b.id,
        )
        for b in businesses
    ]
    rules.append(
        DesiredRule(
            name=FALLBACK_RULE,
            numbers=(),
            metadata=_json({"managed_by": MANAGED_BY, "business": None}),
            attributes={},
            agent_metadata=_json({"business": None}),
            business=None,
        )
    )
    return rules


def rule_info(rule: DesiredRule, trunk_id: str, agent_name: str) -> api.SIPDispatchRuleInfo:
    return api.SIPDispatchRuleInfo(
        name=rule.name,
        trunk_ids=[trunk_id],
        numbers=list(rule.numbers),
        rule=api.SIPDispatchRule(
            dispatch_rule_individual=api.SIPDispatchRuleIndividual(room_prefix=ROOM_PREFIX)
        ),
        metadata=rule.metadata,
        attributes=rule.attributes,
        hide_phone_number=False,
        krisp_enabled=False,
        room_config=api.RoomConfiguration(
            agents=[api.RoomAgentDispatch(agent_name=agent_name, metadata=rule.agent_metadata)]
        ),
    )


# ---------------------------------------------------------------- flat views for diffing


def desired_outbound_trunk(
    settings: ProvisionSettings, businesses: Sequence[Business]
) -> api.SIPOutboundTrunkInfo:
    """The trunk warm transfers ring the person through; calls leave from the business's number."""
    assert settings.sip_outbound_address is not None
    password = settings.twilio_termination_password
    return api.SIPOutboundTrunkInfo(
        name=settings.sip_outbound_trunk_name,
        metadata=_json({"managed_by": MANAGED_BY}),
        address=settings.sip_outbound_address,
        transport=_TRANSPORTS[settings.sip_transport],
        numbers=sorted(n for b in businesses for n in b.numbers),
        auth_username=settings.twilio_termination_username or "",
        auth_password=password.get_secret_value() if password else "",
    )


_TRANSPORTS = {
    "udp": api.SIPTransport.SIP_TRANSPORT_UDP,
    "tcp": api.SIPTransport.SIP_TRANSPORT_TCP,
    "tls": api.SIPTransport.SIP_TRANSPORT_TLS,
}


def outbound_trunk_view(t: api.SIPOutboundTrunkInfo) -> dict[str, Any]:
    return {
        "address": t.address,
        "transport": api.SIPTransport.Name(t.transport),
        "numbers": sorted(t.numbers),
        "auth_username": t.auth_username,
        "auth_password": t.auth_password,
        "metadata": t.metadata,
    }


def trunk_view(t: api.SIPInboundTrunkInfo) -> dict[str, Any]:
    return {
        "numbers": sorted(t.numbers),
        "allowed_addresses": sorted(t.allowed_addresses),
        "allowed_numbers": sorted(t.allowed_numbers),
        "auth_username": t.auth_username,
        "auth_password": t.auth_password,
        "headers_to_attributes": dict(t.headers_to_attributes),
        "krisp_enabled": t.krisp_enabled,
        "ringing_timeout": t.ringing_timeout.seconds if t.HasField("ringing_timeout") else None,
        "max_call_duration": t.max_call_duration.seconds
        if t.HasField("max_call_duration")
        else None,
        "metadata": t.metadata,
    }


def rule_view(r: api.SIPDispatchRuleInfo) -> dict[str, Any]:
    kind = r.rule.WhichOneof("rule")
    inner = getattr(r.rule, kind) if kind else None
    view: dict[str, Any] = {
        "trunk_ids": sorted(r.trunk_ids),
        "numbers": sorted(r.numbers),
        "inbound_numbers": sorted(r.inbound_numbers),
        "rule": {
            "type": kind,
            "room_prefix": getattr(inner, "room_prefix", None),
            "pin": getattr(inner, "pin", ""),
        },
        "metadata": r.metadata,
        "attributes": dict(r.attributes),
        "hide_phone_number": r.hide_phone_number,
        "krisp_enabled": r.krisp_enabled,
        "room_config.agents.count": len(r.room_config.agents),
    }
    for i, agent in enumerate(r.room_config.agents):
        view[f"room_config.agents[{i}].agent_name"] = agent.agent_name
        view[f"room_config.agents[{i}].metadata"] = agent.metadata
    return view


def _twirp(exc: api.ServerError) -> str:
    return " ".join(str(p) for p in (exc.status, exc.code, exc.message) if p and p != "unknown")


def _managed(metadata: str) -> bool:
    try:
        return json.loads(metadata).get("managed_by") == MANAGED_BY
    except (ValueError, AttributeError):
        return False


# ---------------------------------------------------------------- LiveKit reconciliation


class LiveKitSide:
    """Reads and writes LiveKit SIP objects, turning transport and auth failures into clear errors."""

    def __init__(self, lk: api.LiveKitAPI, url: str):
        self.lk = lk
        self.url = url

    async def call(self, what: str, coro: Any) -> Any:
        try:
            return await coro
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise ProvisionError(
                f"LiveKit at {self.url} is unreachable while trying to {what}: "
                f"{exc.__class__.__name__}: {exc} (is livekit-server running, and LIVEKIT_URL right?)"
            ) from None
        except api.ServerError as exc:
            if exc.status == 401:
                raise ProvisionError(
                    f"LiveKit at {self.url} rejected LIVEKIT_API_KEY/LIVEKIT_API_SECRET ({_twirp(exc)})"
                ) from None
            raise ProvisionError(
                f"LiveKit at {self.url} refused to {what}: {_twirp(exc)}"
            ) from None


async def _reconcile_trunk(
    side: LiveKitSide, plan: Plan, apply: bool, kind: str, want: Any, same_name: Sequence[Any],
    view: Callable[[Any], dict[str, Any]], *, note: str,
    create: Callable[[], Awaitable[Any]], update: Callable[[str], Awaitable[Any]],
) -> str:  # fmt: skip
    """The trunk of `kind` named `want.name`, created when `same_name` (the existing ones, oldest first)
    is empty, else brought to `want` where its `view` differs; returns its id (PENDING_ID when a dry
    run would create it)."""
    if not same_name:
        plan.add(Action("livekit", kind, want.name, "create", note=note))
        if not apply:
            return PENDING_ID
        made = await side.call(f"create {kind} {want.name!r}", create())
        plan.actions[-1].id = made.sip_trunk_id
        return made.sip_trunk_id
    current = same_name[0]
    changes = diff(view(current), view(want), secrets=frozenset({"auth_password"}))
    plan.add(Action("livekit", kind, want.name, "update" if changes else "keep", current.sip_trunk_id, changes))
    if changes and apply:
        await side.call(f"update {kind} {want.name!r}", update(current.sip_trunk_id))
    return current.sip_trunk_id


async def reconcile_livekit(
    lk: api.LiveKitAPI,
    settings: ProvisionSettings,
    businesses: Sequence[Business],
    plan: Plan,
    apply: bool,
) -> None:
    side = LiveKitSide(lk, settings.livekit_url)
    want = desired_trunk(settings, businesses)
    trunks = await side.call(
        "list inbound trunks", lk.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest())
    )
    same_name = sorted(
        (t for t in trunks.items if t.name == want.name), key=lambda t: t.sip_trunk_id
    )

    trunk_id = await _reconcile_trunk(
        side, plan, apply, "inbound trunk", want, same_name, trunk_view,
        note=f"numbers={list(want.numbers)}",
        create=lambda: lk.sip.create_inbound_trunk(api.CreateSIPInboundTrunkRequest(trunk=want)),
        update=lambda trunk_id: lk.sip.update_inbound_trunk(trunk_id, want),
    )  # fmt: skip
    for extra in same_name[1:]:
        # a duplicate would claim the same numbers; LiveKit rejects that only on its next write
        plan.add(
            Action(
                "livekit",
                "inbound trunk",
                extra.name,
                "delete",
                extra.sip_trunk_id,
                note="duplicate name",
            )
        )
        if apply:
            await side.call(
                f"delete duplicate inbound trunk {extra.sip_trunk_id}",
                lk.sip.delete_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=extra.sip_trunk_id)),
            )

    rules = await side.call(
        "list dispatch rules", lk.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())
    )
    existing: dict[str, list[api.SIPDispatchRuleInfo]] = {}
    for r in sorted(rules.items, key=lambda r: r.sip_dispatch_rule_id):
        existing.setdefault(r.name, []).append(r)

    desired = desired_rules(settings, businesses)
    # deletions first: a stale rule may still hold a number a desired rule is about to claim
    wanted_names = {d.name for d in desired}
    for name, found in sorted(existing.items()):
        stale = found if name not in wanted_names else found[1:]
        for r in stale:
            if not _managed(r.metadata):
                continue
            note = (
                "business no longer in the brains" if name not in wanted_names else "duplicate name"
            )
            plan.add(
                Action(
                    "livekit", "dispatch rule", name, "delete", r.sip_dispatch_rule_id, note=note
                )
            )
            if apply:
                await side.call(
                    f"delete dispatch rule {r.sip_dispatch_rule_id}",
                    lk.sip.delete_dispatch_rule(
                        api.DeleteSIPDispatchRuleRequest(
                            sip_dispatch_rule_id=r.sip_dispatch_rule_id
                        )
                    ),
                )

    for d in desired:
        info = rule_info(d, trunk_id, settings.agent_name)
        found = existing.get(d.name)
        if not found:
            numbers = list(d.numbers) or "any"
            plan.add(
                Action(
                    "livekit",
                    "dispatch rule",
                    d.name,
                    "create",
                    note=f"numbers={numbers} agent={settings.agent_name!r} business={d.business!r}",
                )
            )
            if apply:
                made = await side.call(
                    f"create dispatch rule {d.name!r}",
                    lk.sip.create_dispatch_rule(
                        api.CreateSIPDispatchRuleRequest(dispatch_rule=info)
                    ),
                )
                plan.actions[-1].id = made.sip_dispatch_rule_id
            continue
        current = found[0]
        changes = diff(rule_view(current), rule_view(info))
        plan.add(
            Action(
                "livekit",
                "dispatch rule",
                d.name,
                "update" if changes else "keep",
                current.sip_dispatch_rule_id,
                changes,
            )
        )
        if changes and apply:
            await side.call(
                f"update dispatch rule {d.name!r}",
                lk.sip.update_dispatch_rule(current.sip_dispatch_rule_id, info),
            )


async def reconcile_outbound_trunk(
    lk: api.LiveKitAPI,
    settings: ProvisionSettings,
    businesses: Sequence[Business],
    plan: Plan,
    apply: bool,
) -> None:
    side = LiveKitSide(lk, settings.livekit_url)
    want = desired_outbound_trunk(settings, businesses)
    trunks = await side.call(
        "list outbound trunks", lk.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())
    )
    same_name = sorted((t for t in trunks.items if t.name == want.name), key=lambda t: t.sip_trunk_id)
    await _reconcile_trunk(
        side, plan, apply, "outbound trunk", want, same_name, outbound_trunk_view,
        note=f"address={want.address}",
        create=lambda: lk.sip.create_outbound_trunk(api.CreateSIPOutboundTrunkRequest(trunk=want)),
        update=lambda trunk_id: lk.sip.update_outbound_trunk(trunk_id, want),
    )  # fmt: skip


async def run_livekit(
    settings: ProvisionSettings, businesses: Sequence[Business], plan: Plan, apply: bool
) -> None:
    assert settings.livekit_api_secret is not None  # provision() required it
    lk = api.LiveKitAPI(
        settings.livekit_url,
        settings.livekit_api_key,
        settings.livekit_api_secret.get_secret_value(),
        timeout=aiohttp.ClientTimeout(total=15),
    )
    try:
        await reconcile_livekit(lk, settings, businesses, plan, apply)
        if settings.sip_outbound_address is not None:
            await reconcile_outbound_trunk(lk, settings, businesses, plan, apply)
    finally:
        await lk.aclose()


# ---------------------------------------------------------------- command line


def build_parser(prog: str = "python -m sip.provision") -> argparse.ArgumentParser:
    """The one parser for provisioning's flags; `receptionist provision` hands its arguments here."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Create or update the LiveKit SIP trunk/dispatch rules and the Twilio trunk "
        "for every business in the brain files. Safe to run repeatedly.",
    )
    parser.add_argument(
        "--brains", help="brain file or directory (default: BRAIN_PATH, as the worker reads it; else brains)"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    mode.add_argument("--check", action="store_true", help="report drift; exit 1 if any, 0 if none")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--only", choices=SIDES, help="provision one side only")
    return parser


async def provision(
    settings: ProvisionSettings,
    businesses: Sequence[Business],
    *,
    apply: bool,
    only: Side | None = None,
    twilio_http_client: Any = None,
) -> Plan:
    """Plan (and with apply=True, carry out) every change; LiveKit first so Twilio never points at
    a trunk that cannot route yet."""
    sides = [only] if only else list(SIDES)
    settings.require_sides(sides)
    plan = Plan()
    if "livekit" in sides:
        await run_livekit(settings, businesses, plan, apply)
    if "twilio" in sides:
        from sip.twilio_side import reconcile_twilio  # the Twilio SDK is slow to import

        await asyncio.to_thread(
            reconcile_twilio, settings, businesses, plan, apply, twilio_http_client
        )
    return plan


def main(
    argv: Sequence[str] | None = None,
    *,
    prog: str = "python -m sip.provision",
    twilio_http_client: Any = None,
) -> int:
    args = build_parser(prog).parse_args(argv)
    mode = "check" if args.check else "dry-run" if args.dry_run else "apply"
    apply = mode == "apply"
    try:
        settings = load_settings()
        businesses = load_businesses(args.brains or settings.brain_path)
        plan = asyncio.run(
            provision(
                settings,
                businesses,
                apply=apply,
                only=args.only,
                twilio_http_client=twilio_http_client,
            )
        )
    except ProvisionError as exc:
        if args.json:
            print(json.dumps({"mode": mode, "error": str(exc)}))
        print(f"error: {exc}", file=sys.stderr)
        return 2

    if args.json:
        print(plan.to_json(mode, applied=apply))
    else:
        for line in plan.lines():
            print(line)
        drifted = len(plan.drifted)
        if mode == "check":
            print(f"{drifted} drifted" if drifted else "no drift")
        elif mode == "dry-run":
            print(f"{drifted} change(s) planned, nothing applied")
        else:
            print(f"{drifted} change(s) applied" if drifted else "nothing to change")
    if mode == "check" and plan.drifted:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
