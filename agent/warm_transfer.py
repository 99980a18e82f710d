"""The warm transfer: the caller waits on hold while the agent calls the department's person through the
LiveKit SIP outbound trunk into the caller's room, tells them (in a voice only they hear) who is
calling, why, and what was already tried, then leaves the two of them talking. When nobody answers
(refused, or still ringing after WARM_TRANSFER_RING_SECONDS) the cold transfer (SIP REFER) to the same
destination takes over; when that fails too, the escalation's task has the agent offer a message.

LiveKit's own WarmTransferTask does this as an AgentTask awaited inside a tool: it needs MoveParticipant,
which self-hosted livekit-server does not implement, and waits for the person to speak first and for
the model to decide to connect them. Ours runs where our transfers run, after the hand-off line has
been heard (EscalationTask, agent/flows/escalation.py), and briefs the person as soon as they pick up,
the way a receptionist would; a second Realtime session is the agent's voice for that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from google.protobuf.duration_pb2 import Duration
from livekit import api, rtc
from livekit.agents import Agent, AgentSession, room_io
from livekit.agents.voice.background_audio import (
    AudioConfig,
    BackgroundAudioPlayer,
    BuiltinAudioClip,
)

from agent import livekit_internals
from agent.brain import departments
from agent.brain.transfer import TransferKind
from agent.call import CallContext, CallerLeft, PhoneLine
from agent.settings import Settings

log = logging.getLogger("receptionist.warm_transfer")

# the person's participant identity in the caller's room
PERSON = "transfer-person"
# a briefing that has not finished playing by then is cut: the caller is waiting
BRIEFING_LIMIT_S = 60.0
REASONS_SAID = {
    "pricing_dispute": "a dispute about a price", "angry_caller": "an upset caller", "legal": "a legal matter",
    "explicit_request": "they asked for a person", "emergency": "an emergency", "complaint": "a complaint",
    "billing": "a billing question",
}  # fmt: skip


class PersonUnreachable(Exception):
    """Nobody took the warm transfer: no outbound trunk, the person refused, or they did not answer."""


def dial_target(destination: str) -> tuple[str, api.SIPOutboundConfig | None]:
    """What livekit-sip dials for a department's `transfer_to`: a `tel:` number through the outbound
    trunk, or a `sip:user@host` address at that host directly."""
    if destination.startswith("tel:"):
        return destination[4:], None
    user, _, host = destination.split(":", 1)[1].partition("@")
    return user, api.SIPOutboundConfig(hostname=host.split(";", 1)[0])


def ring_for(seconds: float) -> Duration:
    """WARM_TRANSFER_RING_SECONDS as LiveKit takes it, fractions kept (0.5 s is not 0: LiveKit's default)."""
    ring = Duration()
    ring.FromNanoseconds(round(seconds * 1e9))
    return ring


def briefing(call: CallContext, escalation: dict[str, Any]) -> str:
    """What the agent is asked to tell the person before the caller is put through: who, why, and
    what the call already tried (from the call's own records, not the model's memory)."""
    who = (
        f"a caller from {call.caller_number}"
        if call.caller_number
        else "a caller with no caller ID"
    )
    reason = REASONS_SAID.get(escalation.get("reason") or "", "they need a person")
    tried = [
        t.name.replace("_", " ") + (" (it failed)" if t.error else "")
        for t in call.tool_log
        if t.name != "escalate_to_human"
    ]
    return (
        f"You are on the phone with {escalation.get('department') or 'the team'} of "
        f"{call.brain.business.name}, not with the caller. In two or three short sentences tell them: "
        f"you have {who} waiting ({reason}); what they need: {escalation.get('summary') or 'not said'}; "
        f"what you already did on the call: {', '.join(dict.fromkeys(tried)) or 'nothing yet'}. "
        "Then say you are putting the caller through now. Ask them nothing."
    )


class WarmTransferLine:
    """The caller's line, warm-transferring to departments that take warm transfers; every other
    transfer, and every hang-up, is the plain line's (`cold`)."""

    def __init__(
        self, cold: PhoneLine, caller: str, *, call: CallContext, session: AgentSession[CallContext],
        room: rtc.Room, lk: api.LiveKitAPI, settings: Settings,
    ) -> None:  # fmt: skip
        self.cold = cold
        self._caller = caller  # the caller's participant identity
        self._call = call
        self._session = session
        self._room = room
        self._lk = lk
        self._settings = settings
        self._ending: asyncio.Task[None] | None = None

    async def hang_up(self, reason: str) -> None:
        await self.cold.hang_up(reason)

    async def transfer(self, destination: str) -> None:
        """Warm when the destination's department takes warm transfers (and the model is there to
        brief the person), else cold; the call's escalation record says which one happened."""
        brain = self._call.brain
        department = next(
            (d for d in brain.escalation.destinations if d.transfer_to == destination), None
        )
        link = getattr(self._session.llm, "link", None)
        warm = (
            department is not None
            and departments.transfer_kind(brain, department) is TransferKind.warm
            and not (link is not None and link.lost)
        )
        escalation = self._call.extras.get("escalation")
        record = (
            escalation
            if escalation is not None and escalation.get("destination") == destination
            else {}
        )
        if not warm:
            record["transfer"] = TransferKind.cold.value
            await self.cold.transfer(destination)
            return
        try:
            waited = await self._while_caller_waits(self._consult(destination, record))
        except Exception as e:
            # the consult can fail because the caller hung up on hold: then nobody is left to transfer
            waited = False
            if self._caller in self._room.remote_participants:
                # nobody took it, or LiveKit failed us: either way the caller must not stay on hold
                if isinstance(e, PersonUnreachable):
                    log.warning(
                        "warm transfer to %s: %s; transferring cold", record.get("department"), e
                    )
                else:
                    log.exception(
                        "warm transfer to %s failed; transferring cold", record.get("department")
                    )
                record.update(transfer=TransferKind.cold.value, warm_failed=str(e) or repr(e))
                await self.cold.transfer(destination)  # TransferFailed: the task offers a message
                return
        if not waited:
            # nobody left to connect: the person (if they answered) is not left on an empty line
            await self.cold.hang_up("caller left during the warm transfer")
            raise CallerLeft("the caller hung up on hold")
        record["transfer"] = TransferKind.warm.value
        # recorded before the agent leaves, as the escalation's task records a cold transfer: leaving
        # closes the session, and that finalises the call row
        self._call.set_outcome("escalated")
        self._call.end_reason = "transferred"
        self._leave()

    async def _consult(self, destination: str, record: dict[str, Any]) -> None:
        async with self._caller_on_hold(), self._apart_until_briefed() as apart:
            await self._call_person(destination, record, apart)

    async def _while_caller_waits(self, consult: Coroutine[Any, Any, None]) -> bool:
        """Run the consult unless the caller hangs up first (then stop it: False)."""
        left = asyncio.Event()

        def on_left(p: rtc.RemoteParticipant) -> None:
            if p.identity == self._caller:
                left.set()

        self._room.on("participant_disconnected", on_left)
        task = asyncio.create_task(consult)
        waiting = asyncio.create_task(left.wait())
        try:
            await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._room.off("participant_disconnected", on_left)
            waiting.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return False
        task.result()  # PersonUnreachable, or a bug, reaches the caller of transfer()
        return True

    @contextlib.asynccontextmanager
    async def _caller_on_hold(self) -> AsyncIterator[None]:
        """Hold music for the caller; what they say meanwhile starts no reply, and their silence is
        no reason to ask whether they are still there."""
        session = self._session
        session.input.set_audio_enabled(False)
        music = BackgroundAudioPlayer()
        try:
            with livekit_internals.user_away_paused(session):
                await music.start(room=self._room)
                music.play(AudioConfig(BuiltinAudioClip.HOLD_MUSIC, volume=0.6), loop=True)
                yield
        finally:
            await music.aclose()
            session.input.set_audio_enabled(True)

    async def _outbound_trunk(self) -> str:
        name = self._settings.sip_outbound_trunk_name
        trunks = await self._lk.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())
        found = sorted(t.sip_trunk_id for t in trunks.items if t.name == name)
        if not found:
            raise PersonUnreachable(
                f"no SIP outbound trunk named {name!r} (receptionist provision makes it)"
            )
        return found[0]

    @contextlib.asynccontextmanager
    async def _apart_until_briefed(self) -> AsyncIterator[Callable[[], Awaitable[None]]]:
        """Until the person has been briefed, they and the caller do not hear each other, and the
        person hears none of the agent's tracks to the caller (its voice, the hold music). Yields
        what keeps them apart once more: call it when the person answers."""
        me = self._room.local_participant
        me.set_track_subscription_permissions(
            allow_all_participants=False,
            participant_permissions=[
                rtc.ParticipantTrackPermission(participant_identity=self._caller, allow_all=True)
            ],
        )
        pending: set[asyncio.Task[None]] = set()

        async def apart() -> None:
            await self._subscribe(self._caller, self._tracks_of(PERSON), on=False)
            await self._subscribe(PERSON, self._tracks_of(self._caller), on=False)

        # livekit-sip subscribes each leg to every track as it appears (while the person's phone
        # rings); this undoes it at once, and `apart` again once they answer, in case livekit-sip's
        # own request arrived after ours
        def on_arrival(*_: Any) -> None:
            task = asyncio.create_task(apart())
            pending.add(task)
            task.add_done_callback(pending.discard)

        self._room.on("track_published", on_arrival)
        self._room.on("participant_connected", on_arrival)
        try:
            yield apart
        finally:
            self._room.off("track_published", on_arrival)
            self._room.off("participant_connected", on_arrival)
            await asyncio.gather(*pending, return_exceptions=True)
            me.set_track_subscription_permissions(allow_all_participants=True)
        # briefed (not refused: livekit-sip's participant for them joins while it rings, and leaves)
        await self._subscribe(self._caller, self._tracks_of(PERSON), on=True)
        await self._subscribe(PERSON, self._tracks_of(self._caller), on=True)

    def _tracks_of(self, identity: str) -> list[str]:
        p = self._room.remote_participants.get(identity)
        return [t.sid for t in p.track_publications.values()] if p is not None else []

    async def _subscribe(self, identity: str, sids: list[str], *, on: bool) -> None:
        if not sids or identity not in self._room.remote_participants:
            return
        try:
            await self._lk.room.update_subscriptions(
                api.UpdateSubscriptionsRequest(
                    room=self._room.name, identity=identity, track_sids=sids, subscribe=on
                )
            )
        except api.TwirpError as e:  # they hear a little more than they should: no reason to fail
            log.warning("could not %ssubscribe %s: %s", "" if on else "un", identity, e.message)

    async def _call_person(
        self, destination: str, escalation: dict[str, Any], apart: Callable[[], Awaitable[None]]
    ) -> None:
        """Ring the person into the caller's room and brief them there, in a voice only they hear
        (the caller meanwhile hears the hold music, and the person not the caller).

        A side room the person is moved out of would keep the caller from hearing them answer, but
        self-hosted livekit-server does not implement MoveParticipant ("not implemented"); LiveKit's
        WarmTransferTask relies on it."""
        number, direct = dial_target(destination)
        request = api.CreateSIPParticipantRequest(
            sip_call_to=number, room_name=self._room.name, participant_identity=PERSON,
            participant_name=escalation.get("department") or "", sip_number=self._call.dialed_number or "",
            wait_until_answered=True, play_dialtone=False,
            ringing_timeout=ring_for(self._settings.warm_transfer_ring_seconds),
        )  # fmt: skip
        if direct is not None:
            request.trunk.CopyFrom(direct)
        else:
            request.sip_trunk_id = await self._outbound_trunk()
        # the briefing's voice is a participant of its own whose audio only the person may receive
        room = rtc.Room()
        token = (
            api.AccessToken(self._settings.livekit_api_key, self._settings.livekit_secret())
            .with_identity(f"{self._room.local_participant.identity}-briefing")
            .with_kind("agent")
            .with_grants(
                api.VideoGrants(
                    room_join=True, room=self._room.name, can_publish=True, can_subscribe=True
                )
            )
            .to_jwt()
        )
        voice = AgentSession(llm=self._briefing_model(), turn_handling={"turn_detection": "manual"})
        try:
            await room.connect(self._settings.livekit_url, token)
            room.local_participant.set_track_subscription_permissions(
                allow_all_participants=False,
                participant_permissions=[
                    rtc.ParticipantTrackPermission(participant_identity=PERSON, allow_all=True)
                ],
            )
            await voice.start(
                agent=Agent(
                    instructions=f"You are the AI receptionist of {self._call.brain.business.name}."
                ),
                room=room,
                room_options=room_io.RoomOptions(
                    participant_identity=PERSON,
                    audio_input=False,
                    text_input=False,
                    close_on_disconnect=False,
                ),
                record=False,
            )
            try:
                await self._lk.sip.create_sip_participant(request)
            except api.TwirpError as e:
                raise PersonUnreachable(f"the call was not answered ({e.message})") from e
            log.info("warm transfer: %s answered; briefing them", escalation.get("department"))
            await apart()
            said = voice.generate_reply(instructions=briefing(self._call, escalation))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(said.wait_for_playout(), BRIEFING_LIMIT_S)
            # what the person was told, for the call's record: nobody else heard it
            escalation["briefing"] = " ".join(
                text for item in said.chat_items if item.type == "message" and (text := item.text_content)
            )
            if PERSON not in self._room.remote_participants:
                raise PersonUnreachable("they hung up during the briefing")
        finally:
            await voice.aclose()
            await room.disconnect()

    def _briefing_model(self) -> Any:
        from agent.session import realtime_model  # the call's model settings, without speculation

        return realtime_model(self._settings.model_copy(update={"speculative_reply": False}))

    def _leave(self) -> None:
        """The agent stops talking and listening; its connection stays only to end the call for the
        other one when the caller or the person hangs up (nobody else would)."""

        def on_left(p: rtc.RemoteParticipant) -> None:
            if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP:
                self._room.off("participant_disconnected", on_left)
                self._ending = asyncio.create_task(self.cold.hang_up("transferred call ended"))

        self._room.on("participant_disconnected", on_left)
        self._session.shutdown(drain=False)
