"""The call's connection to the Realtime model: the plugin's own bounded reconnects (which replay the
conversation), and the moment it gives up reported to the call instead of ending it.

Left alone, the plugin's last failed reconnect closes the whole AgentSession, and with it the caller's
audio: the caller hears nothing until they hang up. Reported as a lost model instead, the session stays
up and the call takes its model-free path (agent/fallback.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from livekit.agents import APIError, llm
from livekit.plugins import openai
from livekit.plugins.openai.realtime.realtime_model import OPENAI_BASE_URL, process_base_url
from openai.types.realtime import ConversationItemDeleteEvent

from agent.fallback_audio import frames_of
from agent.livekit_internals import SAMPLE_RATE, ResponseGeneration, current_generation
from agent.settings import Settings, SettingsError

log = logging.getLogger("receptionist.model")

MIN_COMMIT_S = 0.1  # the Realtime API refuses to commit less than 100 ms of audio


class ModelLink:
    """What a call hears about its model connection: each reconnect, and the loss when retries are spent."""

    def __init__(self) -> None:
        self.lost_error: Exception | None = None
        self.reconnects = 0
        # the brain's hold line (24 kHz PCM16), played when a reply's first audio is this late
        self.hold_pcm: bytes | None = None
        self.hold_after = 0.7
        self.late_replies = 0
        self._on_lost: list[Callable[[Exception], None]] = []
        self._on_reconnected: list[Callable[[], None]] = []

    @property
    def lost(self) -> bool:
        return self.lost_error is not None

    def on_lost(self, callback: Callable[[Exception], None]) -> None:
        self._on_lost.append(callback)

    def on_reconnected(self, callback: Callable[[], None]) -> None:
        self._on_reconnected.append(callback)

    def report_lost(self, error: Exception) -> None:
        if self.lost_error is not None:
            return
        self.lost_error = error
        log.error("the model is unreachable: %s", error)
        for callback in self._on_lost:
            callback(error)

    def report_reconnected(self) -> None:
        self.reconnects += 1
        log.warning(
            "the model connection is back (reconnect %d, conversation replayed)", self.reconnects
        )
        for callback in self._on_reconnected:
            callback()


# a tool -> its Realtime schema (0 or 1 of them: what the plugin makes of it); kept while the tool lives
_TOOL_SCHEMAS: weakref.WeakKeyDictionary[llm.FunctionTool, list[Any]] = weakref.WeakKeyDictionary()


class LinkedSession(openai.realtime.RealtimeSession):
    """The plugin's session, reporting reconnects and its final failure to the call's ModelLink."""

    def __init__(self, model: LinkedRealtimeModel, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.link = model.link
        self.on("session_reconnected", lambda _ev: self.link.report_reconnected())
        self._voiced: set[str] = set()  # reply items whose audio has started
        # a reply the caller cut off as it began (agent/yield_on_resume.py) is being stopped: its
        # messages leave the model's conversation instead of being truncated to what was heard
        self.dropping_reply = False
        self._held_ms: dict[str, int] = {}  # reply item -> ms of hold line played before its audio
        self._sent_instructions: str | None = None  # what the last session.update carried
        # the caller's short sounds over a reply, committed as items of their own so that their words
        # tell an "mhm" from a "no, stop" (agent/backchannel.py): the judge of those words, one on its
        # way, and their item ids
        self._aside_is_backchannel: Callable[[str], bool] = lambda _words: False
        self._aside_pending = False
        self.asides: set[str] = set()
        self.on("remote_item_added", self._on_remote_item)

    def commit_aside(self, is_backchannel: Callable[[str], bool]) -> bool:
        """Commit the caller's audio so far as an item of its own and ask for no reply, so that its
        transcript says what the short sound over the agent's reply was. Words `is_backchannel` of are
        deleted from the model's conversation and never surface (no caller turn, nothing recorded);
        others surface as any transcript does. False when it cannot be committed now (a reply still
        generating, or too little audio)."""
        if not self.commit_heard():
            return False
        self._aside_is_backchannel, self._aside_pending = is_backchannel, True
        return True

    def _on_remote_item(self, ev: llm.RemoteItemAddedEvent) -> None:
        item = ev.item
        if self._aside_pending and item.type == "message" and item.role == "user":
            self._aside_pending = False
            self.asides.add(item.id)

    def _handle_conversion_item_input_audio_transcription_delta(self, event: Any) -> None:
        if event.item_id not in self.asides:  # an aside's words surface once judged, whole
            super()._handle_conversion_item_input_audio_transcription_delta(event)

    def _handle_conversion_item_input_audio_transcription_completed(self, event: Any) -> None:
        if event.item_id in self.asides and self._aside_is_backchannel(event.transcript or ""):
            self._emit_transcription_metrics(event)  # transcribed, and billed, all the same
            self.send_event(ConversationItemDeleteEvent(type="conversation.item.delete", item_id=event.item_id))
            return
        super()._handle_conversion_item_input_audio_transcription_completed(event)

    def commit_heard(self) -> bool:
        """Commit the caller's audio so far and ask for no reply: its transcript comes back while they
        may still be talking, for the dictation pacing to judge (agent/turn_pacing.py)."""
        if self.has_active_generation or self._pushed_duration_s < MIN_COMMIT_S:
            return False
        self._aside_pending = False
        openai.realtime.RealtimeSession.commit_audio(self)
        return True

    def commit_audio(self) -> None:
        # an aside whose item never came (the server refused its commit) must not make this commit's
        # item, the caller's turn, an aside: a real "yes" would be deleted as an "mhm"
        self._aside_pending = False
        super().commit_audio()

    async def update_instructions(self, instructions: str) -> None:
        # a task that keeps the receptionist's instructions (the hand-over to a person) changes
        # nothing the model has: sending 8 KB of the same words in and again out is only cost
        if instructions == self._sent_instructions:
            return
        await super().update_instructions(instructions)
        self._sent_instructions = instructions

    # -- a slow first audio: the hold line, inside the reply itself ------------------------------
    # The reply's speech is already the session's current speech while its audio is late, so a
    # separate `say()` would wait behind it; played at the head of the reply's own audio stream,
    # the hold line is heard at once and the model's words follow it in the same turn.
    def _handle_response_output_item_added(self, event: Any) -> None:
        super()._handle_response_output_item_added(event)
        item = event.item
        item_id = item.get("id") if isinstance(item, dict) else getattr(item, "id", None)
        item_type = item.get("type") if isinstance(item, dict) else getattr(item, "type", None)
        if item_type == "message" and item_id and self.link.hold_pcm:
            asyncio.get_running_loop().call_later(
                self.link.hold_after, self._hold_if_silent, item_id
            )

    def _handle_response_audio_delta(self, event: Any) -> None:
        self._voiced.add(event.item_id)
        super()._handle_response_audio_delta(event)

    def _hold_if_silent(self, item_id: str) -> None:
        gen = current_generation(self)
        pcm = self.link.hold_pcm
        if item_id in self._voiced or pcm is None or not isinstance(gen, ResponseGeneration):
            return
        message = gen.messages.get(item_id)
        if message is None or message.audio_ch.closed:
            return
        if message.modalities.done():
            if "audio" not in message.modalities.result():
                return
        else:
            message.modalities.set_result(["audio", "text"])
        for frame in frames_of(pcm, SAMPLE_RATE):
            message.audio_ch.send_nowait(frame)
        self._voiced.add(item_id)
        self._held_ms[item_id] = len(pcm) // 2 * 1000 // SAMPLE_RATE
        self.link.late_replies += 1
        log.warning(
            "the model's reply is late (no audio after %.1f s): hold line played",
            self.link.hold_after,
        )

    def truncate(self, *, message_id: str, audio_end_ms: int, **kwargs: Any) -> None:
        # the model never sent the hold line: what it said starts after it
        held = self._held_ms.get(message_id, 0)
        if self.dropping_reply:
            audio_end_ms = held = 0  # truncated to nothing, the plugin deletes the item
        super().truncate(message_id=message_id, audio_end_ms=max(0, audio_end_ms - held), **kwargs)

    # -- tool schemas, built once per tool -------------------------------------------------------
    # Every flow switch sends the tool list again, and the plugin rebuilds each tool's JSON schema
    # (a pydantic model per tool) every time: about 40 ms of CPU per list here, three lists per
    # booking call. A tool's schema depends only on its signature and docstring, so it is built once
    # per process and what the model is sent is the same, byte for byte.
    def _convert_tools_to_oai(self, tools: list[llm.Tool]) -> list[Any]:
        out: list[Any] = []
        for tool in tools:
            if not isinstance(tool, llm.FunctionTool):
                out += super()._convert_tools_to_oai([tool])
                continue
            converted = _TOOL_SCHEMAS.get(tool)
            if converted is None:
                converted = _TOOL_SCHEMAS[tool] = super()._convert_tools_to_oai([tool])
            out += converted
        return out

    def _emit_error(self, error: Exception, recoverable: bool) -> None:
        if not recoverable:
            self.link.report_lost(error)
            # the AgentSession would close on it and take the caller's audio along; the call decides
            recoverable = True
        super()._emit_error(error, recoverable)

    async def aclose(self) -> None:
        try:
            await super().aclose()
        except APIError:
            # the failure that ended the connection loop, already reported through the link
            if not self.link.lost:
                raise


class LinkedRealtimeModel(openai.realtime.RealtimeModel):
    """OpenAI Realtime whose sessions report to one ModelLink; one model per call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.link = ModelLink()
        self.live: LinkedSession | None = None  # the call's session with the model

    def session(self, *, turn_detection_disabled: bool = False) -> LinkedSession:
        sess = LinkedSession(self, turn_detection_disabled=turn_detection_disabled)
        self._sessions.add(sess)
        self.live = sess
        return sess


def live_session(model: Any) -> LinkedSession | None:
    """A call's session with the model, when its model is ours and connected (a text-only or
    test model has none)."""
    return model.live if isinstance(model, LinkedRealtimeModel) else None


def check_model_key(settings: Settings) -> None:
    """At worker start: one connection to the Realtime endpoint, and SettingsError when it refuses the
    API key (HTTP 401/403) -- every call would otherwise find out, and take the model-free path.

    An endpoint that cannot be reached is only logged: it may be back before the first call."""
    reach = asyncio.run(reach_model(settings))
    if reach.refusal is not None:
        raise SettingsError(
            f"OPENAI_API_KEY was refused by the Realtime API ({reach.url}): {reach.refusal}"
        )
    if reach.error is not None:
        log.info("could not check the OpenAI API key at %s: %s", reach.url, reach.error)


@dataclass(frozen=True)
class ModelReach:
    """One probe of the Realtime endpoint: reached and took the key, refused it, or not reached."""

    url: str
    refusal: str | None = None  # the endpoint's words when it refused the key (HTTP 401/403)
    error: str | None = None  # why it could not be reached

    @property
    def usable(self) -> bool:
        return self.refusal is None and self.error is None


def realtime_endpoint(settings: Settings, user_agent: str) -> tuple[str, dict[str, str]]:
    """The Realtime WebSocket URL the plugin would open for `settings`, and the headers for a
    connection of our own to it (the key check, the voiced lines)."""
    url = process_base_url(settings.openai_base_url or OPENAI_BASE_URL, settings.openai_realtime_model)
    key = settings.openai_api_key.get_secret_value()
    return url, {"Authorization": f"Bearer {key}", "User-Agent": user_agent}


async def reach_model(settings: Settings, timeout_s: float = 5.0) -> ModelReach:
    """Open (and close) one Realtime WebSocket with the configured key: the start-up key check and the
    worker's health endpoint. Opening a session bills nothing; no audio or text is sent."""
    url, headers = realtime_endpoint(settings, "receptionist key check")
    try:
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(timeout_s):
                try:
                    ws = await http.ws_connect(url, headers=headers)
                except aiohttp.WSServerHandshakeError as e:
                    if e.status not in (401, 403):
                        raise
                    return ModelReach(
                        url, refusal=f"HTTP {e.status}{await _error_message(http, url, headers)}"
                    )
                await ws.close()
    except (aiohttp.ClientError, TimeoutError, OSError) as e:
        return ModelReach(url, error=str(e) or type(e).__name__)
    return ModelReach(url)


async def _error_message(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> str:
    """The refusal's own words ("Incorrect API key provided"), from the same URL over plain HTTP."""
    try:
        async with http.get(url.replace("ws", "http", 1), headers=headers) as resp:
            body = json.loads(await resp.text())
        return f" ({body['error']['message']})"
    except (aiohttp.ClientError, ValueError, KeyError, TypeError):
        return ""
