"""The brain's fixed lines read by the model itself, once, when a worker starts: the greeting and the
model-down lines (hold, transfer, message, goodbye). Rendered with espeak-ng alone, the hold line that
covers a slow first audio and the apology when the model is unreachable were a robot's voice in the
middle of a call in the model's; read by the model, the caller hears one voice throughout, and the
fleet's very first caller hears the kept greeting too.

Each line is asked of the Realtime endpoint on a connection of its own (no caller is on it), with
instructions to read the text word for word. Its audio is kept (agent/kept_greeting.py: a file under
GREETING_AUDIO_DIR and a `kept_lines` row for the fleet) only when the model's words were the line's,
numbers included; a line read otherwise, or not at all, keeps espeak-ng's rendering. A line the fleet
already has is not asked for again, so this costs a few seconds of audio per brain, once per fleet and
per model and voice. Nothing on a call waits on it: it runs in the worker's main process, and the
model-free path still needs no network (the lines are on disk before any call needs them).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from collections.abc import Iterable

import aiohttp
from psycopg_pool import AsyncConnectionPool

from agent.brain import Brain, BrainError, load_brains
from agent.brain.schema.calls import MODEL_DOWN_LINE_FIELDS, ModelDown
from agent.fallback_audio import MODEL_RATE
from agent.kept_greeting import KeptLine, LineShelf, same_words
from agent.model_link import realtime_endpoint
from agent.settings import Settings

log = logging.getLogger("receptionist.voiced_lines")

READ_ALOUD = (
    "You are the voice of a business's phone receptionist, recording one line for its phone system. "
    "Read aloud exactly the text the user sends, word for word, in a warm, natural, unhurried voice, in "
    "the text's own language. Say nothing else: no greeting, no comment, no question."
)
LINE_TIMEOUT_S = 30.0
RECHECK_S = 600.0  # the brain files read again for lines without the model's audio
MAX_TRIES = 3  # a line the model did not read word for word, asked for again at most this often


def fixed_lines(brain: Brain) -> list[str]:
    """What a call of this brain says word for word: its greeting, then its model-down lines."""
    down = brain.calls.model_down
    return [brain.greeting_text(), *(getattr(down, f) for f in MODEL_DOWN_LINE_FIELDS)]


def default_lines() -> list[str]:
    """The model-down lines of the generic brain that answers numbers no brain claims."""
    down = ModelDown()
    return [getattr(down, f) for f in MODEL_DOWN_LINE_FIELDS]


async def read_aloud(settings: Settings, text: str, *, timeout_s: float = LINE_TIMEOUT_S) -> tuple[str, bytes]:
    """The model's words and audio (PCM16 mono at 24 kHz) for `text`, from one Realtime connection.

    Raises on a connection, protocol or model failure (an `error` event, a response that did not
    complete)."""
    url, headers = realtime_endpoint(settings, "receptionist voiced lines")
    item = f"item_{uuid.uuid4().hex[:20]}"
    said: list[str] = []
    audio = bytearray()
    async with asyncio.timeout(timeout_s), aiohttp.ClientSession() as http:
        async with http.ws_connect(url, headers=headers) as ws:
            for event in (
                {"type": "session.update", "session": {
                    "type": "realtime", "output_modalities": ["audio"], "instructions": READ_ALOUD,
                    "audio": {"input": {"turn_detection": None},
                              "output": {"format": {"type": "audio/pcm", "rate": MODEL_RATE},
                                         "voice": settings.openai_voice}}}},
                {"type": "conversation.item.create", "previous_item_id": "root", "item": {
                    "id": item, "type": "message", "role": "user",
                    "content": [{"type": "input_text", "text": text}]}},
                {"type": "response.create", "response": {"metadata": {"client_event_id": item}}},
            ):  # fmt: skip
                await ws.send_str(json.dumps(event))
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"the connection ended ({message.type.name})")
                event = json.loads(message.data)
                kind = event.get("type")
                if kind == "error":
                    raise RuntimeError(f"the model refused: {event.get('error', {}).get('message', event)}")
                if kind == "response.output_audio.delta":
                    audio += base64.b64decode(event["delta"])
                elif kind == "response.output_audio_transcript.delta":
                    said.append(event["delta"])
                elif kind == "response.done":
                    status = event.get("response", {}).get("status")
                    if status != "completed":
                        raise RuntimeError(f"the model's reading ended {status}")
                    return "".join(said), bytes(audio)
    raise ConnectionError("the connection closed before the reading was done")


async def voice_lines(
    settings: Settings, texts: Iterable[str], pool: AsyncConnectionPool | None
) -> dict[str, bool | None]:
    """Each line kept in the model's voice, asked of the model unless this worker or the fleet has it:
    text -> True (kept), False (the model read other words) or None (not read: the model could not be
    reached, refused, or the line could not be kept). One line at a time; a line not kept is logged and
    left to espeak-ng (and the greeting to the first call)."""
    kept: dict[str, bool | None] = {}
    for text in dict.fromkeys(t for t in texts if t.strip()):
        shelf = LineShelf.of(settings, text, pool)
        if await shelf.find() is not None:
            kept[text] = True
            continue
        try:
            said, pcm = await read_aloud(settings, text)
        except (aiohttp.ClientError, OSError, TimeoutError, RuntimeError, ValueError, KeyError) as e:
            log.warning("the model did not read %r (%s); espeak-ng's rendering stays", text[:60],
                        e or type(e).__name__)  # fmt: skip
            kept[text] = None
            continue
        if not pcm or not same_words(said, text):
            log.warning("the model read %r as %r; not kept", text[:60], said[:80])
            kept[text] = False
            continue
        kept[text] = await shelf.keep_line(KeptLine(text, pcm, MODEL_RATE)) or None
    return kept


def lines_to_voice(brains: Iterable[Brain]) -> list[str]:
    """Every brain's fixed lines, then the default model-down lines, each once, in the order asked."""
    return list(dict.fromkeys([line for brain in brains for line in fixed_lines(brain)] + default_lines()))


async def voice_every_brain(
    settings: Settings, brains: Iterable[Brain], *, texts: list[str] | None = None
) -> dict[str, bool | None]:
    """Every brain's fixed lines and the default model-down lines (or `texts`), kept for the fleet when
    Postgres is configured: text -> whether it is kept."""
    texts = lines_to_voice(brains) if texts is None else texts
    pool = None
    if settings.database_url:
        from agent.store.db import open_pool

        try:
            pool = await open_pool(settings.database_url, min_size=1, max_size=1, name="voiced-lines",
                                   pgbouncer=settings.database_pgbouncer)  # fmt: skip
        except Exception as e:  # noqa: BLE001 - the files still serve this worker
            log.warning("Postgres unreachable (%s): the voiced lines are kept on this worker only", e)
    try:
        kept = await voice_lines(settings, texts, pool)
    finally:
        if pool is not None:
            await pool.close()
    log.info("the model's voice for %d of %d fixed lines", sum(ok is True for ok in kept.values()), len(kept))
    return kept


async def keep_lines_voiced(settings: Settings, *, every_s: float = RECHECK_S) -> None:
    """The worker's main process, for as long as it runs (GREETING_AUDIO and VOICED_LINES on): every
    brain's lines voiced as it starts, then every `every_s` the brain files read again, and a line
    without the model's audio yet (edited since, or not read before) asked for; a line the model keeps
    reading in other words ("Dr." as "Doctor") MAX_TRIES times at most, then it stays espeak-ng's."""
    voiced: set[str] = set()
    tries: dict[str, int] = {}
    while True:
        try:
            brains = load_brains(settings.brain_path).all
        except BrainError as e:  # a brain being edited: the next round reads it again
            log.warning("brains not read (%s); the lines are voiced at the next round", e)
        else:
            wanted = [t for t in lines_to_voice(brains) if t not in voiced and tries.get(t, 0) < MAX_TRIES]
            try:
                kept = await voice_every_brain(settings, [], texts=wanted) if wanted else {}
            except Exception:  # noqa: BLE001 - never the end of the worker's voicing: the next round tries
                log.exception("voicing the brains' lines failed")
                kept = {}
            voiced |= {t for t, ok in kept.items() if ok}
            for text, ok in kept.items():  # only a reading in other words counts as a try
                tries[text] = tries.get(text, 0) + (ok is False)
        await asyncio.sleep(every_s)
