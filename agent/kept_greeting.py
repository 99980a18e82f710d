"""The greeting as the model said it, kept and played again, so a caller hears it as soon as the line is
up instead of after the model's latency (the whole of that latency was the caller's wait: 300 ms of the
benchmark's second, and OpenAI's first audio often takes longer).

The first call a worker answers for a brain greets through the model, as before. Its audio is kept
(GREETING_AUDIO_DIR/<key>.wav) when it was heard to its end and the model's words were the brain's
greeting, word for word: a model that added or changed anything is not recorded, and the next call asks
the model again, as does a greeting with a hold line or a reconnect in it. The key is a digest of the
words, the model and the voice, so a brain whose greeting or voice changes, or a new model, greets
through the model once more. Later calls play the file with `session.say` and record it as the agent's
first turn.

With Postgres (DATABASE_URL) the kept greeting is the fleet's: it is also stored in `kept_lines`,
and a worker with no file for it (another replica kept it, or this pod's disk went with the pod) plays
that copy and writes its own file from it, instead of greeting through the model. To have the model
say a greeting afresh, delete its row and the workers' files. It is not put in the
model's conversation, where an assistant message given as text can turn the model to answering in text
(agent/receptionist.py): the instructions say every call opens with the greeting, and a caller who
talked over it is named in them with what they heard. A file that cannot be read is skipped with a
warning: the model greets.

The same shelf keeps any of the brain's fixed lines the model has read (agent/voiced_lines.py: the
greeting and the model-down lines, read as a worker starts), each by its own words.

Nothing of a caller is in it: the brain's words in the model's voice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import tempfile
import wave
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livekit import rtc
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from agent.brain import Brain
from agent.fallback_audio import MODEL_RATE, pcm_frames, write_wav
from agent.settings import Settings

log = logging.getLogger("receptionist.greeting")

FORMAT = 1  # bump when what is kept changes: every key changes with it
MAX_SECONDS = 60.0  # a greeting longer than this is not a greeting: nothing is kept
# the fleet's copy is looked for while the caller's leg comes up; past this the model greets
FETCH_TIMEOUT_S = 1.0


# unlike agent.brain.languages.words_of, numbers count: "open 9 to 5" is not "open 10 to 6"
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def _words(text: str) -> list[str]:
    """Words and numbers, case and punctuation aside ("don’t" is "don't")."""
    return _WORD.findall(text.casefold().replace("\u2019", "'"))


def same_words(said: str, text: str) -> bool:
    """Whether the model said the greeting's words and numbers, in order, punctuation and case aside."""
    return bool(_words(text)) and _words(said) == _words(text)


def greeting_cut_short(heard: str) -> str:
    """What the model is told when the caller talked over the kept greeting (in its instructions: the
    greeting itself is not in its conversation)."""
    return ("# Your greeting was cut short\n"
            f'The caller talked over your greeting; they heard only: "{heard}". If that did not say you '
            "are an AI assistant, say so in your next reply.")  # fmt: skip


@dataclass(frozen=True)
class KeptLine:
    text: str
    pcm: bytes  # PCM16 mono
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / self.rate

    def frames(self) -> AsyncIterator[rtc.AudioFrame]:
        return pcm_frames(self.pcm, self.rate)

    def words_in(self, seconds: float) -> str:
        """The greeting's words heard in its first `seconds`, at its average pace (when the playout
        could not say which were heard)."""
        words = self.text.split()
        return " ".join(words[: round(len(words) * min(1.0, max(0.0, seconds / self.seconds)))])


@dataclass(frozen=True)
class LineShelf:
    """Where one of a brain's fixed lines (the greeting, a model-down line), in one model's voice, is
    kept: a file, and the fleet's row when there is a pool."""

    directory: Path
    text: str
    model: str
    voice: str
    pool: AsyncConnectionPool | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, settings: Settings, text: str, pool: AsyncConnectionPool | None = None) -> LineShelf:
        """The shelf of `text` in the model and voice `settings` name, under GREETING_AUDIO_DIR."""
        return cls(settings.greeting_audio_dir, text, settings.openai_realtime_model, settings.openai_voice, pool)

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps([FORMAT, self.model, self.voice, self.text]).encode()).hexdigest()[:24]

    @property
    def path(self) -> Path:
        return self.directory / f"{self.key}.wav"

    def load(self) -> KeptLine | None:
        """This worker's file of the greeting, or None when there is none yet or it cannot be used."""
        try:
            with wave.open(str(self.path), "rb") as w:
                if w.getnchannels() != 1 or w.getsampwidth() != 2 or not w.getnframes():
                    raise ValueError(f"{w.getnchannels()} channels, {w.getsampwidth()}-byte samples, "
                                     f"{w.getnframes()} frames")  # fmt: skip
                return KeptLine(self.text, w.readframes(w.getnframes()), w.getframerate())
        except FileNotFoundError:
            return None
        except (OSError, EOFError, ValueError, wave.Error) as e:
            log.warning("kept line %s cannot be played (%s); not played", self.path, e)
            return None

    async def find(self) -> KeptLine | None:
        """The kept line: this worker's file, else the fleet's copy (written to the file for the next
        call). None when neither is there, or Postgres cannot say within FETCH_TIMEOUT_S."""
        kept = await asyncio.to_thread(self.load)
        if kept is not None or self.pool is None:
            return kept
        # not cancelled at the timeout but left to end by itself: psycopg waits on a query it cancels
        fetch = asyncio.ensure_future(self._fetch(self.pool))
        done, _ = await asyncio.wait({fetch}, timeout=FETCH_TIMEOUT_S)
        if not done:
            fetch.add_done_callback(_retrieve)
            log.warning("the fleet's kept line did not come within %.1f s; not played", FETCH_TIMEOUT_S)
            return None
        try:
            kept = fetch.result()
        except Exception as e:  # noqa: BLE001 - down or not migrated: the model says it
            log.warning("the fleet's kept line cannot be read (%s); not played", e or type(e).__name__)
            return None
        if kept is None:
            return None
        try:
            await asyncio.to_thread(self._write, kept)
        except OSError as e:
            log.warning("cannot keep the fleet's line in %s (%s); playing it anyway", self.directory, e)
        return kept

    async def _fetch(self, pool: AsyncConnectionPool) -> KeptLine | None:
        async with pool.connection(timeout=FETCH_TIMEOUT_S) as conn:
            return await self._read(conn)

    async def _read(self, conn: AsyncConnection[Any]) -> KeptLine | None:
        """The fleet's row of this line."""
        cur = await conn.execute("SELECT rate, pcm FROM kept_lines WHERE key = %s", (self.key,))
        row = await cur.fetchone()
        return KeptLine(self.text, bytes(row[1]), row[0]) if row is not None else None

    def take(self, said: str, frames: list[rtc.AudioFrame]) -> KeptLine | None:
        """The model's greeting audio as a kept greeting, when its words were the greeting's."""
        if not same_words(said, self.text):
            log.info("the model's greeting was not the brain's words (%r); not kept", said)
            return None
        rates = {(f.sample_rate, f.num_channels) for f in frames}
        if len(rates) != 1 or next(iter(rates))[1] != 1:
            log.info("the greeting's audio is not one mono stream (%s); not kept", sorted(rates))
            return None
        kept = KeptLine(self.text, b"".join(bytes(f.data) for f in frames), frames[0].sample_rate)
        if kept.seconds > MAX_SECONDS:
            log.info("the greeting's audio is over %.0f s; not kept", MAX_SECONDS)
            return None
        return kept

    async def keep(self, said: str, frames: list[rtc.AudioFrame]) -> bool:
        """Keep the model's greeting audio, in the file and for the fleet, when its words were the
        greeting's; whether it was kept (in either)."""
        kept = self.take(said, frames)
        return kept is not None and await self.keep_line(kept)

    async def keep_line(self, kept: KeptLine) -> bool:
        """Keep the model's audio of this line for the fleet and in the file; whether it was kept (in
        either). When another replica (or call) kept the line first, theirs is the fleet's and this
        worker's file too, so every replica plays the same audio."""
        shared = False
        if self.pool is not None:
            try:
                async with self.pool.connection() as conn:
                    cur = await conn.execute(
                        "INSERT INTO kept_lines (key, text, model, voice, rate, pcm)"
                        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING RETURNING key",
                        (self.key, self.text, self.model, self.voice, kept.rate, kept.pcm),
                    )
                    if await cur.fetchone() is None:
                        kept = await self._read(conn) or kept
                shared = True
            except Exception as e:  # noqa: BLE001 - the file still serves this worker
                log.warning("the kept line is not shared with the fleet (%s)", e or type(e).__name__)
        on_disk = False
        try:
            await asyncio.to_thread(self._write, kept)
            on_disk = True
        except OSError:
            log.exception("cannot keep the line's audio in %s", self.directory)
        log.info("kept the model's audio of %r (%.1f s)%s%s", kept.text[:40], kept.seconds,
                 f" at {self.path}" * on_disk, " for the fleet" * shared)  # fmt: skip
        return on_disk or shared

    def _write(self, kept: KeptLine) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # whole files only: another job process (or replica, on a shared volume) may be reading, or
        # keeping the same greeting
        fd, name = tempfile.mkstemp(dir=self.directory, suffix=".partial")
        try:
            with os.fdopen(fd, "wb") as out:
                write_wav(out, kept.pcm, kept.rate)
            os.replace(name, self.path)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise


def shelf_for(settings: Settings, brain: Brain, pool: AsyncConnectionPool | None = None) -> LineShelf | None:
    """Where this call's greeting is kept (the fleet's copy through `pool`, the process's Postgres
    pool), or None when GREETING_AUDIO is off."""
    if not settings.greeting_audio:
        return None
    return LineShelf.of(settings, brain.greeting_text(), pool)


def _retrieve(task: asyncio.Future[object]) -> None:
    if not task.cancelled():
        task.exception()  # a fetch given up on: its failure was already reported as a timeout


def voiced_line(settings: Settings) -> Callable[[str], bytes | None] | None:
    """The model's kept audio of a line, by its words, from this worker's disk (24 kHz PCM16), for the
    model-down lines (agent/fallback_audio.py); None unless GREETING_AUDIO and VOICED_LINES are on."""
    if not (settings.greeting_audio and settings.voiced_lines):
        return None

    def find(text: str) -> bytes | None:
        kept = LineShelf.of(settings, text).load()
        return kept.pcm if kept is not None and kept.rate == MODEL_RATE else None

    return find


@dataclass
class GreetingTake:
    """The model's audio of one greeting, as it streams to the caller."""

    frames: list[rtc.AudioFrame] = field(default_factory=list)
    started: bool = False
    whole: bool = False  # the model's audio stream ran to its end

    async def tee(self, audio: AsyncIterable[rtc.AudioFrame]) -> AsyncIterator[rtc.AudioFrame]:
        self.started = True
        async for frame in audio:
            self.frames.append(frame)
            yield frame
        self.whole = True
