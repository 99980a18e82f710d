"""The Twilio half of provisioning: an Elastic SIP trunk whose origination URL points at livekit-sip
(and, with TWILIO_VOICE_FALLBACK_URL, whose disaster-recovery URL answers the calls livekit-sip does not
take), every business number associated with it, and optional termination credentials."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client

from sip.plan import Action, Business, FieldChange, Plan, ProvisionError, ProvisionSettings, diff

ORIGINATION_NAME = "livekit-sip"
ORIGINATION_PRIORITY = 10
ORIGINATION_WEIGHT = 10
# REFER to tel: numbers (escalation to a human) needs PSTN transfer enabled on the trunk;
# the caller's own number is what the human sees.
TRANSFER_MODE = "enable-all"
TRANSFER_CALLER_ID = "from-transferee"
PENDING_SID = "<new trunk>"

T = TypeVar("T")


def twilio_call(what: str, fn: Callable[[], T]) -> T:
    """Run one Twilio request, turning its failures into errors an operator can act on."""
    try:
        return fn()
    except TwilioRestException as exc:
        raise _refusal(what, exc.status, exc.msg, exc.code) from None
    except TwilioException as exc:
        # list pages fail with a bare TwilioException carrying the raw HTTP response
        response = exc.args[1] if len(exc.args) > 1 else None
        if not isinstance(response, Response):
            raise ProvisionError(f"Twilio failed to {what}: {exc}") from None
        try:
            body = json.loads(response.text)
        except ValueError:
            body = {}
        message = body.get("message") or response.text
        raise _refusal(what, response.status_code, message, body.get("code")) from None
    except requests.RequestException as exc:
        raise ProvisionError(f"Twilio API unreachable while trying to {what}: {exc}") from None


def _refusal(what: str, status: int, message: str, code: int | None) -> ProvisionError:
    detail = f"{status} {message}" + (f" (code {code})" if code else "")
    if status in (401, 403):
        return ProvisionError(
            f"Twilio rejected TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN while trying to {what}: {detail}"
        )
    return ProvisionError(f"Twilio refused to {what}: {detail}")


def twilio_client(settings: ProvisionSettings, http_client: HttpClient | None = None) -> Client:
    """The real Twilio client; http_client is an injection point (tests route it to a local fake)."""
    assert settings.twilio_auth_token is not None  # provision() required it
    return Client(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        http_client=http_client,
    )


def _trunk_view(trunk: Any) -> dict[str, Any]:
    return {
        "transfer_mode": trunk.transfer_mode,
        "transfer_caller_id": trunk.transfer_caller_id,
        "domain_name": trunk.domain_name,
        "disaster_recovery_url": trunk.disaster_recovery_url,
        "disaster_recovery_method": trunk.disaster_recovery_method,
    }


def _origination_view(url: Any) -> dict[str, Any]:
    return {
        "sip_url": url.sip_url,
        "priority": url.priority,
        "weight": url.weight,
        "enabled": url.enabled,
    }


def reconcile_twilio(
    settings: ProvisionSettings,
    businesses: Sequence[Business],
    plan: Plan,
    apply: bool,
    http_client: HttpClient | None = None,
) -> None:
    client = twilio_client(settings, http_client)
    trunks_api = client.trunking.v1.trunks
    name = settings.twilio_trunk_name

    want_trunk: dict[str, Any] = {
        "transfer_mode": TRANSFER_MODE,
        "transfer_caller_id": TRANSFER_CALLER_ID,
    }
    if settings.twilio_trunk_domain:
        want_trunk["domain_name"] = settings.twilio_trunk_domain
    if settings.twilio_voice_fallback_url:
        # calls livekit-sip cannot take: Twilio answers them from our TwiML (agent/notify/voice_fallback.py)
        want_trunk["disaster_recovery_url"] = settings.twilio_voice_fallback_url
        want_trunk["disaster_recovery_method"] = "POST"

    found = [
        t
        for t in twilio_call("list Elastic SIP trunks", lambda: trunks_api.list())
        if t.friendly_name == name
    ]
    if len(found) > 1:
        sids = ", ".join(t.sid for t in found)
        raise ProvisionError(
            f"Twilio holds {len(found)} Elastic SIP trunks named {name!r} ({sids}); "
            "delete or rename all but one, or set TWILIO_TRUNK_NAME"
        )
    trunk_sid = PENDING_SID
    if not found:
        plan.add(
            Action(
                "twilio",
                "trunk",
                name,
                "create",
                note=", ".join(f"{k}={v}" for k, v in want_trunk.items()),
            )
        )
        if apply:
            made = twilio_call(
                f"create trunk {name!r}",
                lambda: trunks_api.create(friendly_name=name, **want_trunk),
            )
            trunk_sid = made.sid
            plan.actions[-1].id = trunk_sid
    else:
        trunk = found[0]
        trunk_sid = trunk.sid
        changes = diff(_trunk_view(trunk), want_trunk)
        plan.add(
            Action("twilio", "trunk", name, "update" if changes else "keep", trunk_sid, changes)
        )
        if changes and apply:
            twilio_call(
                f"update trunk {name!r}", lambda: trunks_api(trunk_sid).update(**want_trunk)
            )

    exists = trunk_sid != PENDING_SID
    trunk_ctx = trunks_api(trunk_sid) if exists else None

    _reconcile_origination(settings, plan, apply, trunk_ctx)
    _reconcile_numbers(client, businesses, plan, apply, trunk_ctx, trunk_sid)
    if settings.twilio_termination_username or settings.twilio_termination_password:
        settings.require(
            "twilio_termination_username",
            "twilio_termination_password",
            why="termination credentials come as a pair",
        )
        _reconcile_termination(client, settings, plan, apply, trunk_ctx)


def _reconcile_origination(
    settings: ProvisionSettings, plan: Plan, apply: bool, trunk_ctx: Any
) -> None:
    want = {
        "sip_url": settings.origination_uri,
        "priority": ORIGINATION_PRIORITY,
        "weight": ORIGINATION_WEIGHT,
        "enabled": True,
    }
    urls = (
        twilio_call("list origination URLs", lambda: trunk_ctx.origination_urls.list())
        if trunk_ctx
        else []
    )
    ours = [u for u in urls if u.friendly_name == ORIGINATION_NAME]
    if not ours:
        plan.add(
            Action("twilio", "origination url", ORIGINATION_NAME, "create", note=want["sip_url"])
        )
        if apply:
            made = twilio_call(
                "create the origination URL",
                lambda: trunk_ctx.origination_urls.create(friendly_name=ORIGINATION_NAME, **want),
            )
            plan.actions[-1].id = made.sid
        return
    url = ours[0]
    changes = diff(_origination_view(url), want)
    plan.add(
        Action(
            "twilio",
            "origination url",
            ORIGINATION_NAME,
            "update" if changes else "keep",
            url.sid,
            changes,
        )
    )
    if changes and apply:
        twilio_call(
            "update the origination URL", lambda: trunk_ctx.origination_urls(url.sid).update(**want)
        )


def _reconcile_numbers(
    client: Client,
    businesses: Sequence[Business],
    plan: Plan,
    apply: bool,
    trunk_ctx: Any,
    trunk_sid: str,
) -> None:
    wanted = {n: b for b in businesses for n in b.numbers}
    on_trunk = {
        p.phone_number: p
        for p in (
            twilio_call("list the trunk's phone numbers", lambda: trunk_ctx.phone_numbers.list())
            if trunk_ctx
            else []
        )
    }
    for number in sorted(wanted):
        if number in on_trunk:
            plan.add(
                Action(
                    "twilio",
                    "phone number",
                    number,
                    "keep",
                    on_trunk[number].sid,
                    note=wanted[number].id,
                )
            )
            continue
        # only numbers missing from the trunk cost a lookup, so a settled run makes no extra calls
        owned = twilio_call(
            f"look up {number}",
            lambda number=number: client.api.v2010.account.incoming_phone_numbers.list(
                phone_number=number, limit=2
            ),
        )
        if not owned:
            raise ProvisionError(
                f"{number} ({wanted[number].source}) is not a phone number of Twilio account "
                f"{client.account_sid}; buy or port it first, or pass --only livekit"
            )
        pn = owned[0]
        changes = [FieldChange("trunk_sid", pn.trunk_sid, trunk_sid)]
        note = (
            f"{wanted[number].id}; moves off trunk {pn.trunk_sid}"
            if pn.trunk_sid
            else wanted[number].id
        )
        plan.add(Action("twilio", "phone number", number, "create", pn.sid, changes, note=note))
        if apply:
            twilio_call(
                f"associate {number} with the trunk",
                lambda pn=pn: trunk_ctx.phone_numbers.create(phone_number_sid=pn.sid),
            )
    for number, pn in sorted(on_trunk.items()):
        if number in wanted:
            continue
        # our trunk routes to LiveKit, which no longer knows this number: the call would die there
        plan.add(
            Action("twilio", "phone number", number, "delete", pn.sid, note="in no brain file")
        )
        if apply:
            twilio_call(
                f"remove {number} from the trunk",
                lambda pn=pn: trunk_ctx.phone_numbers(pn.sid).delete(),
            )


def _reconcile_termination(
    client: Client, settings: ProvisionSettings, plan: Plan, apply: bool, trunk_ctx: Any
) -> None:
    """Credentials LiveKit presents when it dials out through Twilio (outbound trunk)."""
    list_name = f"{settings.twilio_trunk_name}-termination"
    username = settings.twilio_termination_username or ""
    assert settings.twilio_termination_password is not None
    password = settings.twilio_termination_password.get_secret_value()
    lists_api = client.api.v2010.account.sip.credential_lists

    found = [
        c
        for c in twilio_call("list SIP credential lists", lambda: lists_api.list())
        if c.friendly_name == list_name
    ]
    list_sid = None
    if not found:
        plan.add(Action("twilio", "credential list", list_name, "create"))
        if apply:
            list_sid = twilio_call(
                "create the credential list", lambda: lists_api.create(friendly_name=list_name)
            ).sid
            plan.actions[-1].id = list_sid
    else:
        list_sid = found[0].sid
        plan.add(Action("twilio", "credential list", list_name, "keep", list_sid))

    creds = (
        twilio_call("list credentials", lambda: lists_api(list_sid).credentials.list())
        if found
        else []
    )
    if any(c.username == username for c in creds):
        # Twilio never returns a password, so only the username can be compared
        plan.add(Action("twilio", "credential", username, "keep", note="password not comparable"))
    else:
        plan.add(Action("twilio", "credential", username, "create"))
        if apply:
            twilio_call(
                "create the termination credential",
                lambda: lists_api(list_sid).credentials.create(
                    username=username, password=password
                ),
            )

    attached = (
        twilio_call("list the trunk's credential lists", lambda: trunk_ctx.credentials_lists.list())
        if trunk_ctx
        else []
    )
    if list_sid and any(a.sid == list_sid for a in attached):
        plan.add(Action("twilio", "trunk credential list", list_name, "keep", list_sid))
    else:
        plan.add(Action("twilio", "trunk credential list", list_name, "create", list_sid))
        if apply:
            twilio_call(
                "attach the credential list to the trunk",
                lambda: trunk_ctx.credentials_lists.create(credential_list_sid=list_sid),
            )
