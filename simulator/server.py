"""A local stand-in for the OpenAI Realtime API (GA protocol, as livekit-plugins-openai 1.8.9 speaks it),
and for the Chat Completions endpoint that writes a call's prose summary.

Scripted replies, recorded traffic; see /work/shared/realtime-protocol.md for the rules it keeps.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import itertools
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from simulator.faults import Fault
from simulator.script import SCRIPT_ENDED_LINE, ModelStep, Script, StepLike
from simulator.speech import MODEL_SAMPLE_RATE, VOICE_RMS, VoiceMode, model_voice, rms

log = logging.getLogger("simulator")

DEFAULT_KEY = "default"
_BYTES_PER_MS = MODEL_SAMPLE_RATE * 2 // 1000  # PCM16 mono at 24 kHz
_MIN_COMMIT_MS = 100
# OpenAI's published rates (developers.openai.com/api/docs/guides/realtime-costs, read 2026-11-28):
# audio in user messages is 1 token per 100 ms, in assistant messages 1 token per 50 ms
_AUDIO_TOKENS_PER_S_IN = 10
_AUDIO_TOKENS_PER_S_OUT = 20
_CHARS_PER_TEXT_TOKEN = 4  # OpenAI's rule of thumb for English text; the real tokenizer varies


def _now() -> float:
    return time.monotonic()


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def _text_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / _CHARS_PER_TEXT_TOKEN)) if text else 0


def _first_voice_ms(pcm: bytes, frame_ms: int = 10) -> int | None:
    """Where in this PCM16 chunk a voice starts (a 10 ms frame above VOICE_RMS), in ms, or None."""
    frame = frame_ms * _BYTES_PER_MS
    for start in range(0, len(pcm) - frame + 1, frame):
        if rms(pcm[start : start + frame]) > VOICE_RMS:
            return start // _BYTES_PER_MS
    return None


def _audio_tokens(ms: int, per_s: int) -> int:
    return math.ceil(ms / 1000 * per_s)


def _redact(event: dict[str, Any]) -> dict[str, Any]:
    """A copy fit for the record: audio payloads become their decoded byte length."""
    out = dict(event)
    for key in ("audio", "delta"):
        value = out.get(key)
        if isinstance(value, str) and (
            key == "audio" or out.get("type") == "response.output_audio.delta"
        ):
            out[key] = len(value) * 3 // 4 - value.count("=", -2)
    return out


@dataclass
class RecordedEvent:
    t: float  # time.monotonic()
    direction: str  # "client" (sent by the plugin) or "server" (sent by us)
    key: str
    connection: int
    type: str
    event: dict[str, Any]


@dataclass
class ToolOutput:
    key: str
    call_id: str
    output: str
    item_id: str


@dataclass
class Truncation:
    key: str
    item_id: str
    content_index: int
    audio_end_ms: int
    audio_ms: int  # how much audio the item actually carried


@dataclass
class ResponseAsked:
    """The conversation as it stood when a response was asked for: what the model answered from."""

    key: str
    number: int  # the key's Nth response (1 = the greeting)
    # in order: {"id", "role", "type", "audio_ms", "text"}; audio_ms is the caller audio committed into
    # a user item, or an assistant item's audio as sent (or truncated to)
    items: list[dict[str, Any]]
    said: str = ""  # what the response spoke (as far as it got)
    status: str = "in_progress"  # as its response.done reported it

    def caller_audio_ms(self) -> list[int]:
        """The committed caller audio of each user item, in order."""
        return [i["audio_ms"] for i in self.items if i["role"] == "user"]


_FAULT_MESSAGES = {
    "rate_limit_exceeded": "Rate limit reached for gpt-realtime in organization org-sim on tokens per min.",
    "inference_rate_limit_exceeded": "Rate limit reached for gpt-realtime in organization org-sim on tokens per min.",
    "server_error": "The server had an error while processing your request. Sorry about that!",
}


def _zeroed(usage: Any) -> Any:
    """The same counts, each 0."""
    if isinstance(usage, dict):
        return {k: _zeroed(v) for k, v in usage.items()}
    return 0 if isinstance(usage, int | float) and not isinstance(usage, bool) else usage


@dataclass
class _Response:
    id: str
    event_id: str | None
    metadata: Any
    number: int = 0  # the key's Nth response (1 = the greeting), across reconnects
    task: asyncio.Task[None] | None = None
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    asked: ResponseAsked | None = None


class _Connection:
    """One socket: a fresh, empty conversation bound to the script of its key."""

    def __init__(
        self, sim: RealtimeSimulator, ws: web.WebSocketResponse, key: str, number: int
    ) -> None:
        self.sim = sim
        self.ws = ws
        self.key = key
        self.number = number
        self.script = sim.script(key)
        self.session: dict[str, Any] = _initial_session()
        self.items: list[dict[str, Any]] = []
        self.audio_ms: dict[str, int] = {}  # assistant item -> ms of audio sent
        self.buffer = bytearray()
        self.response: _Response | None = None
        self._send_lock = asyncio.Lock()
        self._cached_prefix = 0
        self.vad = _EnergyVad() if sim.server_vad else None

    # ---- plumbing -------------------------------------------------------------------------

    async def send(self, event: dict[str, Any]) -> None:
        event.setdefault("event_id", _new_id("event"))
        self.sim._record("server", self, event)
        async with self._send_lock:
            if self.ws.closed:
                return
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(json.dumps(event))

    async def error(
        self,
        code: str,
        message: str,
        event_id: str | None,
        type_: str = "invalid_request_error",
        param: str | None = None,
    ) -> None:
        await self.send(
            {
                "type": "error",
                "error": {
                    "type": type_,
                    "code": code,
                    "message": message,
                    "param": param,
                    "event_id": event_id,
                },
            }
        )

    def problem(self, text: str) -> None:
        self.sim._problem(self.key, text)

    def _stale(self, item_id: Any) -> bool:
        """An item an earlier socket of this call generated: after a reconnect the client may still
        name one (the reply the drop cut off); the real API refuses it, and that is no script problem."""
        return item_id in self.sim._generated.get(self.key, set()) and self.index_of(item_id) is None

    def tail_id(self) -> str | None:
        return self.items[-1]["id"] if self.items else None

    def index_of(self, item_id: str) -> int | None:
        for i, item in enumerate(self.items):
            if item["id"] == item_id:
                return i
        return None

    def _turn_detection(self) -> dict[str, Any] | None:
        return ((self.session.get("audio") or {}).get("input") or {}).get("turn_detection")

    def _transcription(self) -> dict[str, Any] | None:
        return ((self.session.get("audio") or {}).get("input") or {}).get("transcription")

    # ---- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        await self.send({"type": "session.created", "session": copy.deepcopy(self.session)})
        try:
            async for msg in self.ws:
                if msg.type != WSMsgType.TEXT:
                    if msg.type == WSMsgType.BINARY:
                        self.problem("binary websocket frame (the protocol is JSON text only)")
                    continue
                try:
                    event = json.loads(msg.data)
                    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                        raise ValueError("not an object with a string `type`")
                except ValueError as e:
                    self.problem(f"unparseable client event: {e}")
                    await self.error("invalid_json", f"Invalid JSON: {e}", None)
                    continue
                await self.handle(event)
        finally:
            if self.response is not None and self.response.task is not None:
                self.response.task.cancel()
                with contextlib.suppress(BaseException):
                    await self.response.task

    async def handle(self, event: dict[str, Any]) -> None:
        self.sim._record("client", self, event)
        handler = _HANDLERS.get(event["type"])
        if handler is None:
            self.problem(f"unknown client event type {event['type']!r}")
            await self.error(
                "invalid_value",
                f"Invalid value: '{event['type']}'. Unknown event type.",
                event.get("event_id"),
                param="type",
            )
            return
        try:
            await handler(self, event)
        except _BadEvent as e:
            self.problem(f"{event['type']}: {e}")
            await self.error(e.code, str(e), event.get("event_id"), param=e.param)
        except Exception as e:  # a malformed event must not take the whole call down
            log.exception("simulator failed on %s", event["type"])
            self.problem(f"{event['type']}: simulator error {e!r}")
            await self.error(
                "server_error",
                f"The simulator failed on this event: {e!r}",
                event.get("event_id"),
                type_="server_error",
            )

    # ---- session ----------------------------------------------------------------------------

    async def on_session_update(self, event: dict[str, Any]) -> None:
        update = event.get("session")
        if not isinstance(update, dict):
            raise _BadEvent(
                "missing_required_parameter", "Missing required parameter: 'session'.", "session"
            )
        _merge(self.session, update)
        td = self._turn_detection()
        if td is not None and self.vad is None:
            self.problem(
                f"client asked for server turn detection {td.get('type')!r} but server_vad is off"
            )
        await self.send({"type": "session.updated", "session": copy.deepcopy(self.session)})

    # ---- input audio ------------------------------------------------------------------------

    async def on_append(self, event: dict[str, Any]) -> None:
        try:
            pcm = base64.b64decode(event.get("audio") or "", validate=True)
        except (binascii.Error, ValueError) as e:
            raise _BadEvent("invalid_value", f"Invalid base64 audio: {e}", "audio") from None
        if len(pcm) % 2:
            self.problem("input_audio_buffer.append with an odd byte count (PCM16 expected)")
        self.buffer.extend(pcm)
        timed = self.script.awaiting_voice
        if timed is not None:
            voice = _first_voice_ms(pcm)
            if voice is not None:
                timed.voice_at_ms = self.script.heard_ms + voice
        self.script.heard_ms += len(pcm) // _BYTES_PER_MS
        if self.vad is not None and self._turn_detection() is not None:
            await self._server_vad(pcm)

    async def on_commit(self, event: dict[str, Any]) -> None:
        buffered_ms = len(self.buffer) // _BYTES_PER_MS
        if buffered_ms < _MIN_COMMIT_MS:
            raise _BadEvent(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of "
                f"audio, but buffer only has {buffered_ms:.2f}ms of audio.",
            )
        await self._commit_user_turn()

    async def _commit_user_turn(self, item_id: str | None = None) -> None:
        audio_ms = len(self.buffer) // _BYTES_PER_MS
        self.buffer.clear()
        item_id = item_id or _new_id("item")
        previous = self.tail_id()
        continuation = bool(self.items) and self.items[-1].get("role") == "user"
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self.items.append(item)
        await self.send(
            {
                "type": "input_audio_buffer.committed",
                "previous_item_id": previous,
                "item_id": item_id,
            }
        )
        await self.send(
            {
                "type": "conversation.item.added",
                "previous_item_id": previous,
                "item": copy.deepcopy(item),
            }
        )
        if continuation and not self.script.transcripts:
            # the caller went on after a pause the client committed at (speculative reply):
            # the words were all transcribed with the first part (or the turn was said in parts)
            transcript = ""
        else:
            transcript = self.script.next_transcript()
        item["content"][0]["transcript"] = transcript
        item["_audio_ms"] = audio_ms
        if self._transcription() is None:
            # the real API does not transcribe unless asked; the caller's words then never reach history
            self.problem("caller audio committed while input transcription is off")
            return
        if self.sim.transcription_delay_ms:
            # the real API transcribes each committed item on its own, after the commit
            task = asyncio.create_task(self._transcribed(item_id, transcript, audio_ms))
            self.sim._background.add(task)
            task.add_done_callback(self.sim._background.discard)
            return
        await self._transcribed(item_id, transcript, audio_ms)

    async def _transcribed(self, item_id: str, transcript: str, audio_ms: int) -> None:
        if self.sim.transcription_delay_ms:
            await asyncio.sleep(self.sim.transcription_delay_ms / 1000)
        if transcript:
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    "item_id": item_id,
                    "content_index": 0,
                    "delta": transcript,
                }
            )
        audio_tokens = _audio_tokens(audio_ms, _AUDIO_TOKENS_PER_S_IN)
        out_tokens = _text_tokens(transcript)
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": transcript,
                "logprobs": None,
                "usage": {
                    "type": "tokens",
                    "input_tokens": audio_tokens,
                    "output_tokens": out_tokens,
                    "total_tokens": audio_tokens + out_tokens,
                    "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": 0},
                },
            }
        )

    async def on_clear(self, event: dict[str, Any]) -> None:
        self.buffer.clear()
        if self.vad is not None:
            self.vad.reset()
        await self.send({"type": "input_audio_buffer.cleared"})

    async def _server_vad(self, pcm: bytes) -> None:
        td = self._turn_detection() or {}
        change = self.vad.feed(
            pcm,
            silence_ms=int(td.get("silence_duration_ms") or 500),
            threshold=float(td.get("threshold") or 0.5),
        )
        if change == "started":
            self.vad.item_id = _new_id("item")
            await self.send(
                {
                    "type": "input_audio_buffer.speech_started",
                    "item_id": self.vad.item_id,
                    "audio_start_ms": self.vad.start_ms,
                }
            )
            if self.response is not None and td.get("interrupt_response", True):
                await self._cancel(self.response, client_event_id=None)
        elif change == "stopped":
            item_id = self.vad.item_id or _new_id("item")
            await self.send(
                {
                    "type": "input_audio_buffer.speech_stopped",
                    "item_id": item_id,
                    "audio_end_ms": self.vad.end_ms,
                }
            )
            await self._commit_user_turn(item_id)
            if td.get("create_response", True) and self.response is None:
                self._start_response({}, event_id=None)

    # ---- conversation items -----------------------------------------------------------------

    async def on_item_create(self, event: dict[str, Any]) -> None:
        item = event.get("item")
        if not isinstance(item, dict):
            raise _BadEvent(
                "missing_required_parameter", "Missing required parameter: 'item'.", "item"
            )
        item = copy.deepcopy(item)
        item_id = item.get("id") or _new_id("item")
        item["id"] = item_id
        if self.index_of(item_id) is not None:
            # not a script problem: the plugin counts this as success (rule 2)
            await self.error(
                "item_create_duplicate_item_id",
                f"Item with id '{item_id}' already exists.",
                event.get("event_id"),
                param="item.id",
            )
            return
        previous = event.get("previous_item_id")
        if previous is None:
            position = len(self.items)
        elif previous == "root":
            position = 0
        elif (idx := self.index_of(previous)) is not None:
            position = idx + 1
        else:
            raise _BadEvent(
                "item_create_invalid_previous_item_id",
                f"Previous item with id '{previous}' not found.",
                "previous_item_id",
            )
        item.setdefault("object", "realtime.item")
        item.setdefault("status", "completed")
        self.items.insert(position, item)
        if item.get("type") == "function_call_output":
            output = str(item.get("output", ""))
            self.script.last_output = output
            self.sim._tool_output(ToolOutput(self.key, str(item.get("call_id")), output, item_id))
        await self.send(
            {
                "type": "conversation.item.added",
                "previous_item_id": self.items[position - 1]["id"] if position else None,
                "item": _public(item),
            }
        )

    async def on_item_delete(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        idx = self.index_of(item_id) if isinstance(item_id, str) else None
        if idx is None and self._stale(item_id):
            await self.error(
                "item_delete_invalid_item_id", f"Item with item_id not found: {item_id}", event.get("event_id")
            )
            return
        if idx is None:
            raise _BadEvent(
                "item_delete_invalid_item_id", f"Item with item_id not found: {item_id}", "item_id"
            )
        del self.items[idx]
        await self.send({"type": "conversation.item.deleted", "item_id": item_id})

    async def on_item_truncate(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        idx = self.index_of(item_id) if isinstance(item_id, str) else None
        if idx is None and self._stale(item_id):
            await self.error(
                "item_truncate_invalid_item_id", f"Item with item_id not found: {item_id}", event.get("event_id")
            )
            return
        if idx is None:
            raise _BadEvent(
                "item_truncate_invalid_item_id",
                f"Item with item_id not found: {item_id}",
                "item_id",
            )
        end_ms = event.get("audio_end_ms")
        if not isinstance(end_ms, int) or end_ms < 0:
            raise _BadEvent(
                "invalid_value", "audio_end_ms must be a non-negative integer.", "audio_end_ms"
            )
        item = self.items[idx]
        if item.get("role") != "assistant":
            raise _BadEvent("invalid_value", "Only assistant messages can be truncated.", "item_id")
        audio_ms = self.audio_ms.get(item_id, 0)
        self.sim._truncation(
            Truncation(self.key, item_id, int(event.get("content_index") or 0), end_ms, audio_ms)
        )
        if end_ms > audio_ms:
            raise _BadEvent(
                "invalid_value",
                f"audio_end_ms {end_ms} is longer than the audio ({audio_ms} ms).",
                "audio_end_ms",
            )
        # the real API drops the transcript of a truncated item; the spoken part is what counts,
        # in the conversation and in what later responses are billed for
        self.audio_ms[item_id] = end_ms
        for part in item.get("content", []):
            if part.get("type") == "output_audio":
                part["transcript"] = None
        await self.send(
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": event.get("content_index", 0),
                "audio_end_ms": end_ms,
            }
        )

    # ---- responses --------------------------------------------------------------------------

    async def on_response_create(self, event: dict[str, Any]) -> None:
        if self.response is not None:
            await self.error(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self.response.id}. "
                "Wait until the response is finished before creating a new one.",
                event.get("event_id"),
            )
            self.problem("response.create while a response was active")
            return
        fault = self.sim.fault_for(self.key, "error", "failed", "session_expired")
        if fault is not None and fault.strikes(self.sim._responses.get(self.key, 0) + 1):
            if fault.kind == "failed":
                await self._fail_response(fault, event)
                return
            self.sim._count_response(self.key)
            await self._refuse_response(fault, event.get("event_id"))
            return
        self._start_response(event.get("response") or {}, event_id=event.get("event_id"))

    async def _refuse_response(self, fault: Fault, event_id: str | None) -> None:
        """The injected failure of one response.create: an `error` naming the request (as a rate
        limit or an overloaded server answers), or the session's expiry, which the server follows by
        closing the socket."""
        self.sim._fault_fired(self.key, fault)
        if fault.kind == "session_expired":
            await self.error(
                "session_expired",
                "Your session hit the maximum duration of 60 minutes.",
                None,
            )
            await self.ws.close(code=1000, message=b"session expired")
            return
        type_ = "server_error" if fault.code == "server_error" else "invalid_request_error"
        await self.error(fault.code, _FAULT_MESSAGES.get(fault.code, fault.code), event_id, type_=type_)

    async def _fail_response(self, fault: Fault, event: dict[str, Any]) -> None:
        """The injected failure of a response once started, as OpenAI reports an overloaded server or
        a rate limit that struck mid-reply: response.created, then response.done `failed` (nothing
        said; the script's step is kept for the reply asked for again)."""
        self.sim._fault_fired(self.key, fault)
        params = event.get("response") or {}
        response = self._new_response(params, event.get("event_id"))
        modalities = params.get("output_modalities") or self.session.get("output_modalities") or ["audio"]
        await self.send({"type": "response.created",
                         "response": self._response_body(response, "in_progress", [], None, modalities)})  # fmt: skip
        # nothing billed, as OpenAI reports a failed response: the usage's shape, every count 0
        usage = _zeroed(self._usage(params, "", 0, []))
        body = self._response_body(response, "failed", [], usage, modalities)
        rate_limited = fault.code != "server_error"
        body["status_details"] = {"type": "failed", "error": {
            "type": "invalid_request_error" if rate_limited else "server_error",
            "code": fault.code if rate_limited else None,
            "message": _FAULT_MESSAGES.get(fault.code, fault.code),
        }}  # fmt: skip
        await self.send({"type": "response.done", "response": body})

    def _new_response(self, params: dict[str, Any], event_id: str | None) -> _Response:
        """A response to response.create, numbered among the key's responses."""
        response = _Response(id=_new_id("resp"), event_id=event_id, metadata=params.get("metadata"))
        response.number = self.sim._count_response(self.key)
        return response

    def _start_response(self, params: dict[str, Any], event_id: str | None) -> None:
        response = self._new_response(params, event_id)
        response.asked = ResponseAsked(self.key, response.number, [
            {"id": i["id"], "role": i.get("role") or i.get("type"), "type": i.get("type"),
             "audio_ms": int(i.get("_audio_ms") or self.audio_ms.get(i["id"], 0)), "text": _item_text(i)}
            for i in self.items
        ])  # fmt: skip
        self.sim.asked.append(response.asked)
        self.response = response
        response.task = asyncio.create_task(
            self._generate(response, params), name=f"sim-{response.id}"
        )

    async def on_response_cancel(self, event: dict[str, Any]) -> None:
        response = self.response
        wanted = event.get("response_id")
        if response is None or (wanted and wanted != response.id):
            await self.error(
                "response_cancel_not_active",
                "Cancellation failed: no active response found",
                event.get("event_id"),
            )
            return
        await self._cancel(response, event.get("event_id"))

    async def _cancel(self, response: _Response, client_event_id: str | None) -> None:
        # finish the cancelled response before the next client message is read
        response.cancelled.set()
        if response.task is not None:
            await asyncio.shield(response.task)

    async def _generate(self, response: _Response, params: dict[str, Any]) -> None:
        outputs: list[dict[str, Any]] = []
        status = "completed"
        spoken = ""
        audio_ms = 0
        modalities = (
            params.get("output_modalities") or self.session.get("output_modalities") or ["audio"]
        )
        try:
            await self.send(
                {
                    "type": "response.created",
                    "response": self._response_body(response, "in_progress", [], None, modalities),
                }
            )
            step, say, tool = self._next_move(params)
            if self.sim.model_delay_ms:
                await _sleep_or_cancel(self.sim.model_delay_ms / 1000, response.cancelled)
            if say and not response.cancelled.is_set():
                item, finished, spoken, audio_ms = await self._speak(
                    response, say, "audio" in modalities, len(outputs)
                )
                outputs.append(item)
            if tool is not None and not response.cancelled.is_set():
                outputs.append(
                    await self._call_tool(response, tool, step.args if step else {}, len(outputs))
                )
            if response.cancelled.is_set():
                status = "cancelled"
                if not outputs:
                    self.script.give_back(step)
        except asyncio.CancelledError:
            # the socket went away mid-response; nothing left to tell
            self.response = None
            raise
        except Exception as e:  # a simulator bug must still close the response (rule 3)
            log.exception("simulator failed while generating %s", response.id)
            self.problem(f"simulator error while generating a response: {e!r}")
            status = "failed"
        body = self._response_body(
            response, status, outputs, self._usage(params, spoken, audio_ms, outputs), modalities
        )
        if status == "cancelled":
            body["status_details"] = {"type": "cancelled", "reason": "client_cancelled"}
        elif status == "failed":
            body["status_details"] = {
                "type": "failed",
                "error": {"type": "server_error", "code": "simulator_error"},
            }
        if response.asked is not None:
            response.asked.said, response.asked.status = spoken, status
        self.response = None
        await self.send({"type": "response.done", "response": body})

    def _next_move(self, params: dict[str, Any]) -> tuple[ModelStep | None, str | None, str | None]:
        step = self.script.next_step()
        if step is None:
            return None, SCRIPT_ENDED_LINE, None
        say = self.script.render(step.say) if step.say is not None else None
        tool = step.tool
        tool_choice = params.get("tool_choice", self.session.get("tool_choice", "auto"))
        if tool is not None and tool_choice == "none":
            # a reply the script did not plan: the agent checking on a quiet caller, or saying goodbye,
            # before the caller's scripted turn. The script keeps its step for that turn, so a person
            # at the console may pause as long as they like.
            self.script.give_back(step)
            instructions = str(params.get("instructions") or "").lower()
            # (the agent's whole instructions may come along, so look for the check-in's own words)
            aside = ("Are you still there? Take your time." if "still there" in instructions
                     else "Thanks for calling. Goodbye!")  # fmt: skip
            return None, aside, None
        if tool is not None:
            tools = (
                params.get("tools")
                if params.get("tools") is not None
                else self.session.get("tools") or []
            )
            names = {t.get("name") for t in tools if isinstance(t, dict)}
            if tool not in names:
                self.problem(
                    f"step {self.script.cursor}: tool {tool!r} is not among the session's tools {sorted(n for n in names if n)}"
                )
        return step, say, tool

    async def _add_output_item(self, response: _Response, output_index: int, item: dict[str, Any]) -> None:
        """A new item in the response's output, and in the conversation after the current tail."""
        previous = self.tail_id()
        self.items.append(item)
        self.sim._generated.setdefault(self.key, set()).add(item["id"])
        await self.send({"type": "response.output_item.added", "response_id": response.id,
                         "output_index": output_index, "item": copy.deepcopy(item)})  # fmt: skip
        await self.send({"type": "conversation.item.added", "previous_item_id": previous,
                         "item": copy.deepcopy(item)})  # fmt: skip

    async def _speak(
        self, response: _Response, text: str, audio: bool, output_index: int
    ) -> tuple[dict[str, Any], bool, str, int]:
        """Stream one assistant message; returns (item, finished, text spoken, ms of audio sent)."""
        item_id = _new_id("item")
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        await self._add_output_item(response, output_index, item)
        part_type = "audio" if audio else "text"
        empty_part = (
            {"type": part_type, "transcript": ""} if audio else {"type": "text", "text": ""}
        )
        ids = {
            "response_id": response.id,
            "item_id": item_id,
            "output_index": output_index,
            "content_index": 0,
        }
        await self.send({"type": "response.content_part.added", **ids, "part": empty_part})

        words = _split_words(text)
        sent_words: list[str] = []
        sent_ms = 0
        finished = True
        if audio:
            pcm = await model_voice(text, self.sim.voice_mode, self.script.voice)
            chunk = max(2, self.sim.audio_chunk_ms * _BYTES_PER_MS)
            chunks = [pcm[i : i + chunk] for i in range(0, len(pcm), chunk)] or [b""]
            late = self.sim.fault_for(self.key, "late_audio")
            if late is not None and late.strikes(response.number):
                self.sim._fault_fired(self.key, late)
                await _sleep_or_cancel(late.delay_s, response.cancelled)
            drop = self.sim.fault_for(self.key, "drop")
            for n, piece in enumerate(chunks):
                if response.cancelled.is_set():
                    finished = False
                    break
                if n == 1 and drop is not None and drop.strikes(response.number):
                    # the first chunk went out: the caller hears the reply start, then nothing
                    self.sim._fault_fired(self.key, drop)
                    await self.ws.close(code=1011, message=b"simulated drop")
                    raise asyncio.CancelledError
                # words go out in step with the audio, so a cut-off reply has a cut-off transcript
                due = math.ceil(len(words) * (n + 1) / len(chunks))
                for word in words[len(sent_words) : due]:
                    sent_words.append(word)
                    await self.send(
                        {"type": "response.output_audio_transcript.delta", **ids, "delta": word}
                    )
                await self.send(
                    {
                        "type": "response.output_audio.delta",
                        **ids,
                        "delta": base64.b64encode(piece).decode(),
                    }
                )
                sent_ms += len(piece) // _BYTES_PER_MS
                self.audio_ms[item_id] = sent_ms
                await _sleep_or_cancel(
                    len(piece) / _BYTES_PER_MS / 1000 / self.sim.pace, response.cancelled
                )
        else:
            drop = self.sim.fault_for(self.key, "drop")
            for n, word in enumerate(words):
                if response.cancelled.is_set():
                    finished = False
                    break
                if n == 1 and drop is not None and drop.strikes(response.number):
                    self.sim._fault_fired(self.key, drop)
                    await self.ws.close(code=1011, message=b"simulated drop")
                    raise asyncio.CancelledError
                sent_words.append(word)
                await self.send({"type": "response.output_text.delta", **ids, "delta": word})
                await asyncio.sleep(0)
        spoken = "".join(sent_words)
        if audio:
            if finished:
                await self.send({"type": "response.output_audio.done", **ids})
                await self.send(
                    {"type": "response.output_audio_transcript.done", **ids, "transcript": spoken}
                )
            final_part = {"type": "output_audio", "transcript": spoken}
            done_part = {"type": "audio", "transcript": spoken}
        else:
            if finished:
                await self.send({"type": "response.output_text.done", **ids, "text": spoken})
            final_part = {"type": "output_text", "text": spoken}
            done_part = {"type": "text", "text": spoken}
        if finished:
            await self.send({"type": "response.content_part.done", **ids, "part": done_part})
        item["status"] = "completed" if finished else "incomplete"
        item["content"] = [final_part]
        await self.send(
            {
                "type": "response.output_item.done",
                "response_id": response.id,
                "output_index": output_index,
                "item": copy.deepcopy(item),
            }
        )
        self.sim._spoken(self.key, spoken, finished)
        return copy.deepcopy(item), finished, spoken, sent_ms

    async def _call_tool(
        self, response: _Response, name: str, args: dict[str, Any], output_index: int
    ) -> dict[str, Any]:
        item_id, call_id = _new_id("item"), _new_id("call")
        arguments = json.dumps(args)
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": name,
            "call_id": call_id,
            "arguments": "",
        }
        await self._add_output_item(response, output_index, item)
        ids = {
            "response_id": response.id,
            "item_id": item_id,
            "output_index": output_index,
            "call_id": call_id,
        }
        await self.send(
            {"type": "response.function_call_arguments.delta", **ids, "delta": arguments}
        )
        await self.send(
            {
                "type": "response.function_call_arguments.done",
                **ids,
                "name": name,
                "arguments": arguments,
            }
        )
        item.update(status="completed", arguments=arguments)
        await self.send(
            {
                "type": "response.output_item.done",
                "response_id": response.id,
                "output_index": output_index,
                "item": copy.deepcopy(item),
            }
        )
        self.sim._tool_call(self.key, name, args)
        return copy.deepcopy(item)

    def _response_body(
        self,
        response: _Response,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None,
        modalities: list[str],
    ) -> dict[str, Any]:
        audio_out = (self.session.get("audio") or {}).get("output") or {}
        return {
            "object": "realtime.response",
            "id": response.id,
            "status": status,
            "status_details": None,
            "output": output,
            "conversation_id": f"conv_{self.sim._conv_ids[id(self)]}",
            "output_modalities": modalities,
            "max_output_tokens": "inf",
            "audio": {
                "output": {
                    "format": {"type": "audio/pcm", "rate": MODEL_SAMPLE_RATE},
                    "voice": audio_out.get("voice", "marin"),
                }
            },
            "metadata": response.metadata,
            "usage": usage,
        }

    def _usage(
        self, params: dict[str, Any], spoken: str, audio_ms: int, outputs: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """`response.usage` as the real API bills it: the whole conversation is the input of every
        response (instructions and tools as text, each item as its audio or its text), the output
        is what this response generated, cancelled or not."""
        instructions = params.get("instructions") or self.session.get("instructions") or ""
        tools = (
            params.get("tools")
            if params.get("tools") is not None
            else self.session.get("tools") or []
        )
        text_in = _text_tokens(instructions) + (_text_tokens(json.dumps(tools)) if tools else 0)
        audio_in = 0
        produced = {o["id"] for o in outputs}
        for item in self.items:
            if item["id"] in produced:
                continue
            if item.get("_audio_ms"):  # the caller's committed audio
                audio_in += _audio_tokens(item["_audio_ms"], _AUDIO_TOKENS_PER_S_IN)
            elif self.audio_ms.get(item["id"]):  # an earlier spoken reply, as far as it was heard
                audio_in += _audio_tokens(self.audio_ms[item["id"]], _AUDIO_TOKENS_PER_S_OUT)
            else:
                text_in += _text_tokens(_item_text(item))
        input_tokens = text_in + audio_in
        # the previous request's prompt is a cached prefix in 64-token blocks, as the real API reports
        cached = min(self._cached_prefix, input_tokens) // 64 * 64
        self._cached_prefix = input_tokens
        out_text = _text_tokens(spoken) + sum(
            _text_tokens(o.get("arguments", ""))
            for o in outputs
            if o.get("type") == "function_call"
        )
        out_audio = _audio_tokens(audio_ms, _AUDIO_TOKENS_PER_S_OUT)
        return {
            "total_tokens": input_tokens + out_text + out_audio,
            "input_tokens": input_tokens,
            "output_tokens": out_text + out_audio,
            "input_token_details": {
                "text_tokens": text_in,
                "audio_tokens": audio_in,
                "image_tokens": 0,
                "cached_tokens": cached,
                "cached_tokens_details": {
                    "text_tokens": min(cached, text_in),
                    "audio_tokens": cached - min(cached, text_in),
                    "image_tokens": 0,
                },
            },
            "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
        }


class _BadEvent(Exception):
    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


_HANDLERS: dict[str, Callable[[_Connection, dict[str, Any]], Any]] = {
    "session.update": _Connection.on_session_update,
    "input_audio_buffer.append": _Connection.on_append,
    "input_audio_buffer.commit": _Connection.on_commit,
    "input_audio_buffer.clear": _Connection.on_clear,
    "conversation.item.create": _Connection.on_item_create,
    "conversation.item.delete": _Connection.on_item_delete,
    "conversation.item.truncate": _Connection.on_item_truncate,
    "response.create": _Connection.on_response_create,
    "response.cancel": _Connection.on_response_cancel,
}


class _EnergyVad:
    """Speech where 20 ms frames are loud enough; ends after the configured silence."""

    FRAME_MS = 20

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.pending = bytearray()
        self.position_ms = 0
        self.speaking = False
        self.loud_ms = 0
        self.quiet_ms = 0
        self.start_ms = 0
        self.end_ms = 0
        self.item_id: str | None = None

    def feed(self, pcm: bytes, *, silence_ms: int, threshold: float) -> str | None:
        """Returns "started" or "stopped" when the state changes within this chunk."""
        self.pending.extend(pcm)
        frame_bytes = self.FRAME_MS * _BYTES_PER_MS
        change = None
        # threshold 0..1 (OpenAI's scale) maps onto an RMS level; 0.5 -> about -36 dBFS
        level = 32767 * 10 ** ((-60 + 48 * threshold) / 20)
        while len(self.pending) >= frame_bytes:
            frame = memoryview(bytes(self.pending[:frame_bytes])).cast("h")
            del self.pending[:frame_bytes]
            rms = math.sqrt(sum(s * s for s in frame) / len(frame))
            self.position_ms += self.FRAME_MS
            if not self.speaking:
                self.loud_ms = self.loud_ms + self.FRAME_MS if rms >= level else 0
                if self.loud_ms >= 60:
                    self.speaking, self.quiet_ms = True, 0
                    self.start_ms = self.position_ms - self.loud_ms
                    change = "started"
            else:
                self.quiet_ms = self.quiet_ms + self.FRAME_MS if rms < level else 0
                if self.quiet_ms >= silence_ms:
                    self.speaking, self.loud_ms = False, 0
                    self.end_ms = self.position_ms
                    return "stopped" if change is None else change
        return change


def _initial_session() -> dict[str, Any]:
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": _new_id("sess"),
        "model": "gpt-realtime",
        "output_modalities": ["audio"],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": int(time.time()) + 3600,
        "include": None,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": MODEL_SAMPLE_RATE},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 200,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": MODEL_SAMPLE_RATE},
                "voice": "marin",
                "speed": 1.0,
            },
        },
    }


def _merge(target: dict[str, Any], update: dict[str, Any]) -> None:
    # nested config objects merge; an explicit null (turn_detection: null) replaces
    for key, value in update.items():
        if (
            isinstance(value, dict)
            and isinstance(target.get(key), dict)
            and key not in ("turn_detection", "format")
        ):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in item.items() if not k.startswith("_")}


def _item_text(item: dict[str, Any]) -> str:
    """The words an item puts in the prompt: message text, a tool's name and arguments, its output."""
    if item.get("type") == "function_call":
        return f"{item.get('name', '')}{item.get('arguments', '')}"
    if item.get("type") == "function_call_output":
        return str(item.get("output", ""))
    parts = item.get("content") or []
    return " ".join(
        str(p.get("text") or p.get("transcript") or "") for p in parts if isinstance(p, dict)
    )


def _split_words(text: str) -> list[str]:
    """Deltas that concatenate back to the exact text: each word keeps its leading space."""
    words: list[str] = []
    for n, word in enumerate(text.split(" ")):
        words.append(word if n == 0 else " " + word)
    return [w for w in words if w] or ([text] if text else [])


async def _sleep_or_cancel(seconds: float, cancelled: asyncio.Event) -> None:
    if seconds <= 0:
        await asyncio.sleep(0)
        return
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(cancelled.wait(), seconds)


def simulated_summary(prompt: str) -> str:
    """The simulator's call summary: the outcome, the caller's first words and the agent's last,
    taken from the `Outcome:`, `Caller:` and `Agent:` lines of the prompt (agent/call_summary.py)."""
    lines = prompt.splitlines()

    def said(who: str) -> list[str]:
        return [line.removeprefix(f"{who}: ").strip() for line in lines if line.startswith(f"{who}: ")]

    caller, agent = said("Caller"), said("Agent")
    outcome = next((line.removeprefix("Outcome: ") for line in lines if line.startswith("Outcome: ")), "unknown")
    parts = [f"Outcome: {outcome}."]
    if caller:
        parts.append(f'The caller first said: "{caller[0]}"')
    if agent:
        parts.append(f'The agent last said: "{agent[-1]}"')
    parts.append(f"({len(caller)} caller turns, {len(agent)} agent turns.)")
    return " ".join(parts)


def _api_error(status: int, type: str, code: str | None, message: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": type, "param": None, "code": code}}, status=status)


class RealtimeSimulator:
    """A scripted OpenAI Realtime server on loopback for the real livekit-plugins-openai client.

    `/v1/realtime` plays the default script; `/sim/<key>/realtime` (see `url_for`) plays the script
    registered under `key`. A reconnect starts an empty conversation but keeps the key's script cursor.
    """

    def __init__(
        self,
        *,
        default_script: Iterable[StepLike] = (),
        model_delay_ms: int = 0,
        voice_mode: VoiceMode = "speech",
        audio_chunk_ms: int = 100,
        pace: float = 4.0,
        server_vad: bool = False,
        transcription_delay_ms: int = 0,
    ) -> None:
        self.model_delay_ms = model_delay_ms
        # commit -> the caller's transcript (the real API's transcriber takes its own time)
        self.transcription_delay_ms = transcription_delay_ms
        self._background: set[asyncio.Task[None]] = set()
        self.voice_mode: VoiceMode = voice_mode
        self.audio_chunk_ms = audio_chunk_ms
        self.pace = pace  # audio goes out at most this many times faster than real time
        self.server_vad = server_vad
        self.events: list[RecordedEvent] = []
        self.problems: list[str] = []  # "key: text", every script or protocol problem seen
        self.tool_outputs: list[ToolOutput] = []
        self.tool_calls: list[tuple[str, str, dict[str, Any]]] = []  # (key, name, args)
        self.truncations: list[Truncation] = []
        self.asked: list[ResponseAsked] = []  # the conversation at each response.create, in order
        self.replies: list[tuple[str, str, bool]] = []  # (key, text spoken, finished)
        self.chat_completions: list[tuple[str, dict[str, Any], dict[str, Any]]] = []  # (key, request, answer)
        self._scripts: dict[str, Script] = {DEFAULT_KEY: Script.of(default_script)}
        self._connections: dict[int, _Connection] = {}
        self._conv_ids: dict[int, str] = {}
        self._numbers = itertools.count(1)
        self._faults: dict[str, Fault] = {}
        self._fired: dict[str, list[float]] = {}
        self._down: set[str] = set()  # keys whose service stays unreachable after a drop
        self._responses: dict[str, int] = {}
        self._generated: dict[str, set[str]] = {}  # assistant items generated per key, any socket  # response.create count per key, across reconnects
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._host = "127.0.0.1"
        self._port = 0

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.router.add_get("/v1/realtime", self._serve_default)
        app.router.add_get("/sim/{key}/realtime", self._serve_keyed)
        app.router.add_post("/v1/chat/completions", self._chat_default)
        app.router.add_post("/sim/{key}/chat/completions", self._chat_keyed)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, host, port)
        await self._site.start()
        self._host = host
        self._port = self._site._server.sockets[0].getsockname()[1]
        return self.base_url

    async def stop(self) -> None:
        await self.disconnect()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> RealtimeSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """For `RealtimeModel(base_url=...)` / OPENAI_BASE_URL: plays the default script."""
        return f"http://{self._host}:{self._port}/v1"

    def url_for(self, key: str) -> str:
        """A base_url whose connections play the script registered under `key`."""
        return f"http://{self._host}:{self._port}/sim/{key}/realtime"

    def api_base_for(self, key: str) -> str:
        """An OpenAI base_url for the REST endpoints (the call summary's chat completions) of `key`."""
        return f"http://{self._host}:{self._port}/sim/{key}"

    # ---- scripting ----------------------------------------------------------------------------

    def add_script(self, key: str, steps: Iterable[StepLike]) -> Script:
        script = Script.of(steps)
        self._scripts[key] = script
        return script

    def script(self, key: str = DEFAULT_KEY) -> Script:
        if key not in self._scripts:
            self._problem(key, "connection for a key with no registered script")
            self._scripts[key] = Script()
        return self._scripts[key]

    def queue_transcript(
        self, text: str, key: str = DEFAULT_KEY, parts: list[tuple[str, float]] | None = None
    ) -> None:
        self.script(key).queue_transcript(text, parts)

    # ---- connections --------------------------------------------------------------------------

    async def _serve_default(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, DEFAULT_KEY)

    async def _serve_keyed(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, request.match_info["key"])

    async def _serve(self, request: web.Request, key: str) -> web.StreamResponse:
        refusal = self._refusal(key)
        if refusal is not None:
            return refusal
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            self._problem(key, "connection without an Authorization bearer header")
            return web.json_response(
                {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                        "message": "Missing bearer authentication.",
                    }
                },
                status=401,
            )
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        conn = _Connection(self, ws, key, next(self._numbers))
        self._connections[id(conn)] = conn
        self._conv_ids[id(conn)] = uuid.uuid4().hex[:20]
        try:
            await conn.run()
        finally:
            self._connections.pop(id(conn), None)
        return ws

    # ---- chat completions (the call summary) ----------------------------------------------------

    async def _chat_default(self, request: web.Request) -> web.Response:
        return await self._chat(request, DEFAULT_KEY)

    async def _chat_keyed(self, request: web.Request) -> web.Response:
        return await self._chat(request, request.match_info["key"])

    async def _chat(self, request: web.Request, key: str) -> web.Response:
        """POST /v1/chat/completions as OpenAI answers it, with a summary made from the transcript
        lines it is sent, so a test can tell what the stored summary must say."""
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            self._problem(key, "chat completion without an Authorization bearer header")
            return _api_error(401, "invalid_request_error", "invalid_api_key", "Missing bearer authentication.")
        try:
            body = await request.json()
        except ValueError:
            return _api_error(400, "invalid_request_error", None, "We could not parse the JSON body of your request.")
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages or not body.get("model"):
            return _api_error(400, "invalid_request_error", None, "'model' and a non-empty 'messages' are required.")
        late = self.fault_for(key, "summary_late")
        failing = self.fault_for(key, "summary_error")
        if late is not None:
            self._fault_fired(key, late)
            await asyncio.sleep(late.delay_s)  # then answers, too late for a client with a shorter limit
        if failing is not None:
            self._fault_fired(key, failing)
            return _api_error(500, "server_error", failing.code, "The server had an error while processing your request.")
        prompt = "\n".join(m.get("content") or "" for m in messages if isinstance(m, dict))
        text = simulated_summary(prompt)
        # OpenAI counts ~3 tokens of framing per message and 3 to prime the reply
        prompt_tokens = sum(_text_tokens(m.get("content") or "") + 3 for m in messages if isinstance(m, dict)) + 3
        completion_tokens = _text_tokens(text)
        answer = {
            "id": _new_id("chatcmpl"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0, "audio_tokens": 0,
                    "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": None,
        }  # fmt: skip
        self.chat_completions.append((key, body, answer))
        return web.json_response(answer)

    # ---- faults ---------------------------------------------------------------------------------

    def set_fault(self, key: str, fault: Fault | None) -> None:
        """What goes wrong on this key's calls from now on (None: nothing)."""
        if fault is None:
            self._faults.pop(key, None)
        else:
            self._faults[key] = fault

    def fault_for(self, key: str, *kinds: str) -> Fault | None:
        fault = self._faults.get(key)
        return fault if fault is not None and fault.kind in kinds else None

    def faults_fired(self, key: str) -> list[float]:
        """When (time.monotonic()) the key's fault struck, each time."""
        return list(self._fired.get(key, []))

    def _fault_fired(self, key: str, fault: Fault) -> None:
        self._fired.setdefault(key, []).append(_now())
        log.info("simulator fault [%s]: %s", key, fault.kind)
        if fault.kind == "drop" and fault.stays_down:
            self._down.add(key)

    def _count_response(self, key: str) -> int:
        self._responses[key] = self._responses.get(key, 0) + 1
        return self._responses[key]

    def _refusal(self, key: str) -> web.Response | None:
        """The WebSocket upgrade refused: a wrong API key (401), or the service gone after a drop (503)."""
        if self.fault_for(key, "bad_key") is not None:
            self._fault_fired(key, self._faults[key])
            return web.json_response(
                {"error": {"type": "invalid_request_error", "code": "invalid_api_key",
                           "message": "Incorrect API key provided: sk-...XXXX."}},
                status=401,
            )  # fmt: skip
        if key in self._down:
            return web.json_response(
                {"error": {"type": "server_error", "code": "service_unavailable",
                           "message": "The service is temporarily unavailable."}},
                status=503,
            )  # fmt: skip
        return None

    def connections(self, key: str | None = None) -> int:
        """How many sockets are open now (for `key`, or all)."""
        return sum(1 for c in self._connections.values() if key is None or c.key == key)

    async def disconnect(self, key: str | None = None) -> None:
        """Close sockets from the server side, as a network drop would; the plugin reconnects."""
        for conn in list(self._connections.values()):
            if key is None or conn.key == key:
                await conn.ws.close(code=1011, message=b"simulated drop")

    # ---- records ------------------------------------------------------------------------------

    def _record(self, direction: str, conn: _Connection, event: dict[str, Any]) -> None:
        self.events.append(
            RecordedEvent(
                _now(), direction, conn.key, conn.number, event.get("type", "?"), _redact(event)
            )
        )

    def _problem(self, key: str, text: str) -> None:
        log.warning("simulator problem [%s]: %s", key, text)
        self.problems.append(f"{key}: {text}")

    def _tool_output(self, out: ToolOutput) -> None:
        if not any(o.key == out.key and o.call_id == out.call_id for o in self.tool_outputs):
            self.tool_outputs.append(out)  # a history replay after a reconnect sends it again

    def _tool_call(self, key: str, name: str, args: dict[str, Any]) -> None:
        self.tool_calls.append((key, name, args))

    def _truncation(self, t: Truncation) -> None:
        self.truncations.append(t)

    def _spoken(self, key: str, text: str, finished: bool) -> None:
        self.replies.append((key, text, finished))

    def script_problems(self, key: str | None = None) -> list[str]:
        """Problems of the script(s) (missing placeholders, exhausted steps, empty transcript queue)
        plus protocol problems recorded for the key."""
        keys = [key] if key is not None else list(self._scripts)
        found = [f"{k}: {p}" for k in keys if k in self._scripts for p in self._scripts[k].problems]
        found += [p for p in self.problems if key is None or p.startswith(f"{key}: ")]
        return found

    def client_events(
        self, type: str | None = None, key: str | None = None
    ) -> list[dict[str, Any]]:
        return [
            e.event
            for e in self.events
            if e.direction == "client"
            and (type is None or e.type == type)
            and (key is None or e.key == key)
        ]

    def server_events(
        self, type: str | None = None, key: str | None = None
    ) -> list[dict[str, Any]]:
        return [
            e.event
            for e in self.events
            if e.direction == "server"
            and (type is None or e.type == type)
            and (key is None or e.key == key)
        ]

    def recorded(
        self,
        *,
        key: str | None = None,
        connection: int | None = None,
        direction: str | None = None,
        type: str | None = None,
    ) -> list[RecordedEvent]:
        return [
            e
            for e in self.events
            if (key is None or e.key == key)
            and (connection is None or e.connection == connection)
            and (direction is None or e.direction == direction)
            and (type is None or e.type == type)
        ]

    async def wait_for(self, predicate: Callable[[], bool], *, within: float = 10.0) -> None:
        """Wait until `predicate()` holds, e.g. `lambda: sim.connections() == 2`; TimeoutError after `within` s."""
        async with asyncio.timeout(within):
            while not predicate():  # noqa: ASYNC110 - any recorded event may flip an arbitrary predicate
                await asyncio.sleep(0.02)
