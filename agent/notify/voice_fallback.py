"""Calls none of our workers can take: Twilio answers them itself, from the TwiML served here.

Twilio's Elastic SIP trunk sends a call to its disaster-recovery URL (set by `sip.provision` from
TWILIO_VOICE_FALLBACK_URL) when it cannot deliver it to livekit-sip: LiveKit or the whole fleet is down,
unreachable, or refuses the call. The caller then hears the brain's own model-down lines, read by
Twilio: a transfer to the business's people when a department is open, otherwise (or when nobody
answers) a voicemail after the tone. Each such call is a `calls` row (end reason `fleet_unreachable`)
and a voicemail a `messages` row, so the owner sees and is told of them like any other; the audio is
fetched from Twilio and deleted there (agent/notify/twilio_recordings.py). With Postgres down too, the caller hears
the same, and what each request would have written waits on disk until Postgres is back
(agent/store/webhook_backlog.py).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from psycopg_pool import AsyncConnectionPool
from twilio.twiml.voice_response import VoiceResponse

from agent.brain import departments
from agent.brain.loader import BrainDirectory
from agent.brain.schema import Brain
from agent.brain.schema.escalation import Department
from agent.log_privacy import mask_numbers
from agent.metrics import FALLBACK_CALLS
from agent.notify.at_once import notifications
from agent.notify.twilio_recordings import TwilioRecordings
from agent.store import twilio_answered as answered
from agent.store.audio import AudioStore
from agent.store.outbox import queue
from agent.store.webhook_backlog import WebhookBacklog

log = logging.getLogger("receptionist.twilio_fallback")

VOICE_PATH = "/twilio/voice"
DIAL_ENDED_PATH = "/twilio/voice/dial-ended"
MESSAGE_ENDED_PATH = "/twilio/voice/message-ended"
RECORDING_PATH = "/twilio/voice/recording"
DIAL_TIMEOUT_S = 20  # rings before the person counts as not answering and the caller gets the voicemail
MESSAGE_SILENCE_S = 3  # the caller's silence that ends a voicemail (Twilio counts whole seconds)
# the steps of a call that leave something in Postgres (agent/store/webhook_backlog.py)
ANSWERED, TRANSFER_ANSWERED, MESSAGE_ENDED, RECORDED = "call_answered", "transfer_answered", "message_ended", "recorded"
NO_BUSINESS_LINE = "Sorry, this number cannot take calls right now. Please try again later."
# Twilio's <Say> languages for a brain whose model-down voice names no country
_SAY_LANGUAGES = {"en": "en-US", "es": "es-MX", "fr": "fr-FR", "de": "de-DE", "it": "it-IT", "pt": "pt-BR",
                  "nl": "nl-NL", "pl": "pl-PL", "sv": "sv-SE", "da": "da-DK", "nb": "nb-NO", "ja": "ja-JP",
                  "ko": "ko-KR", "zh": "cmn-CN", "ru": "ru-RU", "tr": "tr-TR"}  # fmt: skip


def say_language(brain: Brain) -> str:
    """The language Twilio reads the brain's lines in: its model-down voice's ("en-gb" is en-GB), else
    its first language's."""
    voice = brain.calls.model_down.voice.lower()
    found = re.fullmatch(r"([a-z]{2})-([a-z]{2})", voice)
    if found:
        return f"{found[1]}-{found[2].upper()}"
    return _SAY_LANGUAGES.get(brain.languages[0], _SAY_LANGUAGES.get(voice[:2], "en-US"))


def _open_department(brain: Brain, at: datetime) -> Department | None:
    """The department a caller asking for a person is put through to at `at`, None when none is open."""
    return departments.route(brain, "explicit_request", at.astimezone(brain.tz)).department


def _left_a_message(form: dict[str, str]) -> bool:
    """Twilio made a recording, and it is not empty."""
    return bool(form.get("RecordingSid")) and form.get("RecordingDuration") != "0"


class TwilioFallback:
    """The TwiML for each step of a call Twilio answers for us, and what each step leaves in Postgres.

    `base`: the public URL Twilio reaches these paths under (what it signs), e.g.
    `https://example.com`; the action URLs in the TwiML are built from it."""

    def __init__(
        self, pool: AsyncConnectionPool, brains: BrainDirectory, backlog: WebhookBacklog, *,
        account_sid: str | None, auth_token: str, voicemail_dir: Path, audio: AudioStore | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:  # fmt: skip
        self.pool, self.brains, self.backlog = pool, brains, backlog
        self.recordings = TwilioRecordings(pool, account_sid=account_sid, auth_token=auth_token,
                                           voicemail_dir=voicemail_dir, audio=audio)  # fmt: skip
        self.clock = clock or (lambda: datetime.now(UTC))
        # what each request leaves in Postgres, written now or, while Postgres is down, once it is back
        backlog.register(ANSWERED, self._answered)
        backlog.register(TRANSFER_ANSWERED, self._transfer_answered)
        backlog.register(MESSAGE_ENDED, self._message_ended)
        backlog.register(RECORDED, self._recorded)

    async def aclose(self) -> None:
        await self.recordings.aclose()

    # -- Twilio's requests ------------------------------------------------------------------------
    async def answer(self, form: dict[str, str], base: str) -> str:
        """The call's first request: the brain of the number dialed, its people if open, else a voicemail."""
        call_sid, caller, dialed = form.get("CallSid", ""), form.get("From") or None, form.get("To") or None
        brain = self._brain_for(form)
        reply = VoiceResponse()
        if brain is None or not call_sid:
            log.warning("Twilio answered a call to %s for us, and %s", dialed,
                        "no brain claims that number" if call_sid else "its request names no CallSid")  # fmt: skip
            reply.say(NO_BUSINESS_LINE, language="en-US")
            reply.hangup()
            return str(reply)
        now = self.clock()
        log.warning("no worker took the call from %s to %s: Twilio answers it (%s)",
                    mask_numbers(caller or "an unknown number"), brain.business.name, call_sid)  # fmt: skip
        open_now = _open_department(brain, now)
        # with Postgres down the caller is still put through or offered the voicemail, and the call is
        # recorded once it is back; a request Twilio repeats is counted once
        written, new = await self.backlog.write(ANSWERED, form, now)
        if new or not written:
            FALLBACK_CALLS.labels(brain.business.name).inc()
        down, language = brain.calls.model_down, say_language(brain)
        if open_now is None:
            return self._voicemail(brain, base, reply)
        reply.say(down.transfer_line, language=language)
        dial = reply.dial(action=base + DIAL_ENDED_PATH, timeout=DIAL_TIMEOUT_S)
        to = open_now.transfer_to
        if to.startswith("tel:"):
            dial.number(to[4:])
        else:
            dial.sip(to)
        return str(reply)

    async def _answered(self, form: dict[str, str], at: datetime) -> bool:
        """The call's row, and the owner told at once (kind `assistant_unreachable`) where the brain asks;
        False when Twilio repeated the request."""
        brain = self._brain_for(form)
        if brain is None:
            log.warning("the call %s is not recorded: no brain claims %s any more", form.get("CallSid"),
                        form.get("To"))  # fmt: skip
            return False
        caller = form.get("From") or None
        department = _open_department(brain, at)
        call_id, new = await self._open_call(brain, form, at)
        then = (f"it rings your {department.name} line ({department.transfer_to.removeprefix('tel:')}), then"
                " offers the voicemail if nobody answers" if department else "it offers the voicemail")  # fmt: skip
        summary = (f"Your assistant could not take a call from {caller or 'an unknown number'}, so the phone"
                   f" line answered it: {then}.")  # fmt: skip
        detail = {"then": "transfer" if department else "voicemail",
                  "department": department.name if department else None}  # fmt: skip
        call = {"id": str(call_id), "caller_number": caller, "outcome": "error", "end_reason": answered.END_REASON,
                "ended_at": at.isoformat()}  # fmt: skip
        await queue(self.pool, notifications(brain, "assistant_unreachable", summary, detail, call_id=call_id,
                                             call=call, created_at=at))  # fmt: skip
        return new

    async def dial_ended(self, form: dict[str, str], base: str) -> str:
        """The person answered (the call is theirs and over), or not: the caller leaves a voicemail."""
        status = form.get("DialCallStatus", "")
        reply = VoiceResponse()
        if status in ("completed", "answered"):
            await self.backlog.write(TRANSFER_ANSWERED, form, self.clock())
            reply.hangup()
            return str(reply)
        brain = self._brain_for(form)  # Twilio repeats the call's parameters on each request
        if brain is None:
            reply.hangup()
            return str(reply)
        log.info("the transfer of %s was not answered (%s): voicemail", form.get("CallSid"), status or "no status")
        return self._voicemail(brain, base, reply)

    async def message_ended(self, form: dict[str, str]) -> str:
        """The caller finished their message: it is kept, and they hear the goodbye."""
        reply = VoiceResponse()
        written, business = await self.backlog.write(MESSAGE_ENDED, form, self.clock())
        brain = self._brain_for(form)
        if (business is not None if written else _left_a_message(form)) and brain is not None:
            reply.say(brain.calls.model_down.goodbye_line, language=say_language(brain))
        reply.hangup()
        return str(reply)

    async def recording(self, form: dict[str, str]) -> None:
        """The voicemail's audio is ready at Twilio (the caller may have hung up before the end of the
        message, so this may be the first word of it): kept, then fetched."""
        if form.get("RecordingStatus", "completed") != "completed":
            log.warning("Twilio could not record the voicemail of %s: %s", form.get("CallSid"),
                        form.get("ErrorCode") or form.get("RecordingStatus"))  # fmt: skip
            return
        await self.backlog.write(RECORDED, form, self.clock())

    # -- what the call leaves ---------------------------------------------------------------------
    async def _open_call(self, brain: Brain, form: dict[str, str], at: datetime) -> tuple[uuid.UUID, bool]:
        return await answered.open_call(self.pool, form.get("CallSid", ""), business=brain.business.name,
                                        caller=form.get("From") or None, dialed=form.get("To") or None, at=at)  # fmt: skip

    async def _transfer_answered(self, form: dict[str, str], at: datetime) -> None:
        brain = self._brain_for(form)
        if brain is not None:  # the call's row, if its first request is not in Postgres yet
            await self._open_call(brain, form, at)
        await answered.end_call(self.pool, form.get("CallSid", ""), outcome="escalated", at=at)

    async def _message_ended(self, form: dict[str, str], at: datetime) -> str | None:
        """The voicemail's row; the business it was left with, None when there is no message to keep."""
        call_sid = form.get("CallSid", "")
        brain = self._brain_for(form)
        if brain is None or not call_sid:
            log.warning("a voicemail for %s to %s, which no brain claims: not kept", call_sid or "no CallSid",
                        form.get("To"))  # fmt: skip
            return None
        if not _left_a_message(form):
            return None  # the caller said nothing: no message, and nothing to thank them for
        # the call's row too, if its first request is not in Postgres yet (it may wait on another
        # process's disk): the voicemail does not wait for it
        await self._open_call(brain, form, at)
        seconds, recording = form.get("RecordingDuration") or "?", form.get("RecordingSid")
        await answered.keep_voicemail(
            self.pool, call_sid, business=brain.business.name, phone=form.get("From") or None, at=at,
            body=f"Voicemail ({seconds} s), left with Twilio while no receptionist could take calls"
            f" (Twilio recording {recording}): play it on the call's page in the console",
        )  # fmt: skip
        return brain.business.name

    async def _recorded(self, form: dict[str, str], at: datetime) -> None:
        """The voicemail's row, then its audio fetched from Twilio."""
        if await self._message_ended(form, at) is not None:
            await self.recordings.recorded(form.get("CallSid", ""), form.get("RecordingUrl", ""))

    def _voicemail(self, brain: Brain, base: str, reply: VoiceResponse) -> str:
        down = brain.calls.model_down
        reply.say(down.message_line, language=say_language(brain))
        reply.record(action=base + MESSAGE_ENDED_PATH, max_length=down.message_seconds, timeout=MESSAGE_SILENCE_S,
                     play_beep=True, trim="trim-silence", recording_status_callback=base + RECORDING_PATH,
                     recording_status_callback_event="completed")  # fmt: skip
        reply.hangup()  # nothing was said: no message, nothing to thank them for
        return str(reply)

    def _brain_for(self, form: dict[str, str]) -> Brain | None:
        """The brain of the number the caller dialed (Twilio's `To`, on every request of the call)."""
        return self.brains.for_number(form.get("To") or None) or self.brains.default

