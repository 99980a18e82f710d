"""What is kept of the model's greeting, and when: only its audio of the brain's own words, found again
only by the same words, model and voice; a file that cannot be played is passed over (the model greets).
With Postgres the greeting is the fleet's: a worker without the file plays the row another kept, and
Postgres down costs only that (the model greets). The call over SIP is tests/phone/test_kept_greeting.py."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from livekit import rtc

from agent.brain import load_brain
from agent.kept_greeting import (
    GreetingTake,
    KeptLine,
    LineShelf,
    greeting_cut_short,
    same_words,
    shelf_for,
)
from agent.settings import load_settings
from agent.store.db import open_pool
from simulator.postgres import PgServer

ROOT = Path(__file__).resolve().parents[2]
TEXT = "Thanks for calling Rose City Plumbing, you've reached the AI assistant. How can I help you today?"


def frames(seconds: float, rate: int = 24000, seed: int = 1) -> list[rtc.AudioFrame]:
    samples = (np.random.default_rng(seed).normal(0, 3000, int(seconds * rate))).astype(np.int16)
    step = rate // 50
    return [rtc.AudioFrame(samples[i : i + step].tobytes(), rate, 1, len(samples[i : i + step]))
            for i in range(0, len(samples), step)]  # fmt: skip


def shelf(tmp_path: Path, text: str = TEXT, voice: str = "alloy", model: str = "gpt-realtime") -> LineShelf:
    return LineShelf(tmp_path / "greetings", text, model, voice)


def test_the_models_words_must_be_the_greetings_punctuation_and_case_aside() -> None:
    assert same_words(TEXT.lower().replace(",", "").replace("?", "."), TEXT)
    assert not same_words("Hi! " + TEXT, TEXT)
    assert not same_words(TEXT.replace("How can I help you today", "What can I do for you"), TEXT)
    assert not same_words(TEXT.rsplit(".", 1)[0], TEXT)  # cut short
    assert not same_words("", "")
    # numbers count, and a curly apostrophe is an apostrophe
    assert not same_words("We're open 10 to 6.", "We're open 9 to 5.")
    assert same_words("Thanks for calling, you’ve reached the AI assistant.", "Thanks for calling, you've reached the AI assistant.")


async def test_a_kept_greeting_is_played_back_sample_for_sample(tmp_path: Path) -> None:
    said = frames(2.5)
    assert shelf(tmp_path).load() is None
    assert await shelf(tmp_path).keep("thanks for calling rose city plumbing, you've reached the AI assistant. "
                                "How can I help you today", said)  # fmt: skip
    kept = shelf(tmp_path).load()
    assert kept is not None and kept.text == TEXT and kept.rate == 24000
    assert kept.pcm == b"".join(bytes(f.data) for f in said)
    played = [f async for f in kept.frames()]
    assert b"".join(bytes(f.data) for f in played)[: len(kept.pcm)] == kept.pcm
    assert {f.sample_rate for f in played} == {24000}


async def test_other_words_are_not_kept_and_nothing_is_written(tmp_path: Path) -> None:
    assert not await shelf(tmp_path).keep("Hello, thanks for calling. How can I help?", frames(1.0))
    assert not (tmp_path / "greetings").exists()


async def test_a_new_greeting_voice_or_model_is_not_served_the_old_audio(tmp_path: Path) -> None:
    assert await shelf(tmp_path).keep(TEXT, frames(1.0))
    assert shelf(tmp_path).load() is not None
    assert shelf(tmp_path, text=TEXT.replace("today", "this evening")).load() is None
    assert shelf(tmp_path, voice="marin").load() is None
    assert shelf(tmp_path, model="gpt-realtime-mini").load() is None


async def test_audio_of_two_rates_or_too_long_is_not_kept(tmp_path: Path) -> None:
    assert not await shelf(tmp_path).keep(TEXT, frames(0.5) + frames(0.5, rate=48000))
    assert not await shelf(tmp_path).keep(TEXT, frames(61.0, rate=8000))
    assert shelf(tmp_path).load() is None


async def test_a_file_that_cannot_be_played_is_passed_over_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert await shelf(tmp_path).keep(TEXT, frames(1.0))
    shelf(tmp_path).path.write_bytes(b"RIFF\x00\x00")
    with caplog.at_level(logging.WARNING, logger="receptionist.greeting"):
        assert shelf(tmp_path).load() is None
    assert "cannot be played" in caplog.text


async def test_the_take_holds_what_streamed_and_knows_whether_it_ran_to_its_end() -> None:
    said = frames(0.2)

    async def stream():  # noqa: ANN202
        for f in said:
            yield f

    take = GreetingTake()
    passed = [f async for f in take.tee(stream())]
    assert passed == said and take.frames == said and take.whole
    cut = GreetingTake()
    async for _ in cut.tee(stream()):
        break
    assert cut.started and not cut.whole and len(cut.frames) == 1


def test_each_brain_and_voice_has_its_shelf_and_the_setting_turns_it_off(tmp_path: Path) -> None:
    brain = load_brain(ROOT / "brains" / "plumbing.yaml")
    settings = load_settings(openai_api_key="x", greeting_audio_dir=tmp_path, openai_voice="ash")
    found = shelf_for(settings, brain)
    assert found is not None and found.text == brain.greeting_text() and found.voice == "ash"
    assert found.path.parent == tmp_path
    assert shelf_for(settings.model_copy(update={"greeting_audio": False}), brain) is None


def test_a_greeting_cut_short_says_what_was_heard_and_asks_for_the_disclosure_if_it_was_not() -> None:
    kept = KeptLine(TEXT, bytes(2 * 24000 * 8), 24000)  # 8 s
    assert kept.words_in(0.0) == "" and kept.words_in(8.0) == TEXT and kept.words_in(99.0) == TEXT
    assert kept.words_in(2.0) == "Thanks for calling Rose"  # a quarter of its 16 words
    note = greeting_cut_short("Thanks for calling Rose City Plumbing,")
    assert 'they heard only: "Thanks for calling Rose City Plumbing,"' in note and "AI assistant" in note


async def test_a_worker_without_the_file_plays_the_greeting_another_kept_for_the_fleet(
    tmp_path: Path, db_url: str
) -> None:
    pool = await open_pool(db_url, min_size=1, max_size=2)
    try:
        said = frames(1.5)
        # one replica keeps it; another, with nothing on its disk, finds it and writes its own file
        assert await LineShelf(tmp_path / "a", TEXT, "gpt-realtime", "alloy", pool).keep(TEXT, said)
        other = LineShelf(tmp_path / "b", TEXT, "gpt-realtime", "alloy", pool)
        assert other.load() is None
        found = await other.find()
        assert found is not None and found.pcm == b"".join(bytes(f.data) for f in said) and found.rate == 24000
        assert other.load() == found  # the next call reads the file
        # keeping it again (a replica that greeted through the model meanwhile) is not an error, and
        # that replica plays the fleet's audio from then on, as every replica does; another voice has
        # no copy
        third = LineShelf(tmp_path / "c", TEXT, "gpt-realtime", "alloy", pool)
        assert await third.keep(TEXT, frames(1.0, seed=2))
        assert third.load() == found
        async with pool.connection() as conn:
            rows = await (await conn.execute("SELECT text, voice, rate, length(pcm) FROM kept_lines")).fetchall()
        assert rows == [(TEXT, "alloy", 24000, 2 * 36000)]
        assert await LineShelf(tmp_path / "d", TEXT, "gpt-realtime", "marin", pool).find() is None
    finally:
        await pool.close()


async def test_with_postgres_down_the_model_greets_and_the_file_still_serves(
    tmp_path: Path, db_url: str, pg_server: PgServer, caplog: pytest.LogCaptureFixture
) -> None:
    pool = await open_pool(db_url, min_size=1, max_size=2)
    try:
        pg_server.stop("immediate")
        with caplog.at_level(logging.WARNING, logger="receptionist.greeting"):
            assert await LineShelf(tmp_path / "b", TEXT, "gpt-realtime", "alloy", pool).find() is None
            # kept on this worker's disk though not for the fleet
            kept = LineShelf(tmp_path / "a", TEXT, "gpt-realtime", "alloy", pool)
            assert await kept.keep(TEXT, frames(1.0))
        assert "the fleet's kept line" in caplog.text and "not shared with the fleet" in caplog.text
        assert (await kept.find()) is not None
    finally:
        await pool.close()
