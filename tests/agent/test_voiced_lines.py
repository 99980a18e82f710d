"""The brain's fixed lines read by the model when a worker starts (agent/voiced_lines.py), against the
Realtime simulator over the real protocol: each line is asked for on its own connection with the
words to read, kept for the fleet only when the model read them word for word, never asked for again
once the fleet has it; the model-down lines then play in the model's voice, all four or none."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest
import yaml

from agent.brain import load_brain, load_brains
from agent.fallback_audio import FallbackLibrary
from agent.kept_greeting import LineShelf, voiced_line
from agent.settings import load_settings
from agent.store.db import open_pool
from agent.voiced_lines import (
    READ_ALOUD,
    default_lines,
    fixed_lines,
    keep_lines_voiced,
    lines_to_voice,
    voice_lines,
)
from simulator.server import DEFAULT_KEY, RealtimeSimulator

ROOT = Path(__file__).resolve().parents[2]
PLUMBING = load_brain(ROOT / "brains" / "plumbing.yaml")


def settings(tmp_path: Path, sim: RealtimeSimulator, directory: str = "greetings"):  # noqa: ANN201
    return load_settings(openai_api_key="sim", openai_base_url=sim.base_url, greeting_audio_dir=tmp_path / directory,
                         openai_voice="marin")  # fmt: skip


def texts_asked(sim: RealtimeSimulator) -> list[str]:
    return [e.event["item"]["content"][0]["text"]
            for e in sim.recorded(key=DEFAULT_KEY, type="conversation.item.create")]  # fmt: skip


async def test_each_line_is_read_by_the_model_and_kept_for_the_fleet_once(tmp_path: Path, db_url: str) -> None:
    lines = fixed_lines(PLUMBING)
    greeting, hold, transfer, message, goodbye, busy = lines
    pool = await open_pool(db_url, min_size=1, max_size=2)
    try:
        async with RealtimeSimulator(model_delay_ms=0, voice_mode="tone", pace=50.0) as sim:
            # the model reads the transfer line with words of its own
            sim.add_script(DEFAULT_KEY, [{"say": greeting}, {"say": hold}, {"say": "Sorry, one second."},
                                         {"say": message}, {"say": goodbye}, {"say": busy}])  # fmt: skip
            kept = await voice_lines(settings(tmp_path, sim), lines, pool)
            assert kept == {greeting: True, hold: True, transfer: False, message: True, goodbye: True, busy: True}
            # each line on a connection of its own, told to read it word for word, in the voice set
            assert texts_asked(sim) == lines
            updates = sim.recorded(key=DEFAULT_KEY, type="session.update")
            assert {e.connection for e in updates} == {e.connection for e in sim.recorded(key=DEFAULT_KEY)}
            assert len({e.connection for e in updates}) == 6
            assert all(e.event["session"]["instructions"] == READ_ALOUD for e in updates)
            assert {e.event["session"]["audio"]["output"]["voice"] for e in updates} == {"marin"}
            async with pool.connection() as conn:
                stored = {t: (v, n) for t, v, n in await (await conn.execute(
                    "SELECT text, voice, length(pcm) FROM kept_lines")).fetchall()}  # fmt: skip
            assert set(stored) == {greeting, hold, message, goodbye, busy}
            assert all(voice == "marin" and size > 0 for voice, size in stored.values())

            # another replica, with nothing on its disk: only the line the fleet lacks is asked for, and
            # the others are written to its disk from Postgres
            sim.add_script(DEFAULT_KEY, [{"say": transfer}])
            before = len(texts_asked(sim))
            other = settings(tmp_path, sim, "other-replica")
            kept = await voice_lines(other, lines, pool)
            assert all(kept.values()) and texts_asked(sim)[before:] == [transfer]
            assert LineShelf(other.greeting_audio_dir, hold, other.openai_realtime_model, "marin").load() is not None
    finally:
        await pool.close()

    # the model-down lines play in the model's voice: the kept audio, sample for sample
    library = FallbackLibrary([PLUMBING], tmp_path / "espeak", voiced=voiced_line(other))
    audio = library.for_brain(PLUMBING)
    found = voiced_line(other)
    assert found is not None
    for line, text in audio.lines.items():
        assert audio.pcm[line] == found(text), line


async def test_with_a_line_not_kept_all_model_down_lines_stay_espeaks(tmp_path: Path) -> None:
    down = fixed_lines(PLUMBING)[1:]
    async with RealtimeSimulator(model_delay_ms=0, voice_mode="tone", pace=50.0) as sim:
        sim.add_script(DEFAULT_KEY, [{"say": down[0]}, {"say": down[1]}, {"say": down[2]}, {"say": "Bye now."},
                                     {"say": down[4]}])  # fmt: skip
        ours = settings(tmp_path, sim)
        kept = await voice_lines(ours, down, None)  # no Postgres: this worker's disk only
    assert list(kept.values()) == [True, True, True, False, True]
    espeak = FallbackLibrary([PLUMBING], tmp_path / "espeak").for_brain(PLUMBING)
    found = voiced_line(ours)
    assert found is not None
    mixed = FallbackLibrary([PLUMBING], tmp_path / "espeak", voiced=found).for_brain(PLUMBING)
    # never a call that switches voice between its lines: all of them are espeak-ng's (its resampling
    # dithers, so the same rendering, not the same bytes)
    assert {line: len(pcm) for line, pcm in mixed.pcm.items()} == {line: len(pcm) for line, pcm in espeak.pcm.items()}
    kept_four = [line for line, text in mixed.lines.items() if found(text) is not None]
    assert len(kept_four) == 4 and all(mixed.pcm[line] != found(mixed.lines[line]) for line in kept_four)


async def test_a_model_that_cannot_be_reached_leaves_every_line_to_espeak(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = load_settings(openai_api_key="sim", openai_base_url="http://127.0.0.1:9/v1",
                                greeting_audio_dir=tmp_path / "greetings")  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="receptionist.voiced_lines"):
        kept = await voice_lines(unreachable, default_lines(), None)
    assert kept == dict.fromkeys(default_lines())  # None: not read (unlike a misreading, not a try)
    assert "espeak-ng's rendering stays" in caplog.text
    assert not (tmp_path / "greetings").exists()  # nothing kept


async def test_a_line_edited_in_the_brain_is_read_by_the_model_at_the_next_round(tmp_path: Path) -> None:
    brains = tmp_path / "brains"
    brains.mkdir()
    data = yaml.safe_load((ROOT / "brains" / "plumbing.yaml").read_text())
    (brains / "plumbing.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    first = lines_to_voice([PLUMBING])
    async with RealtimeSimulator(model_delay_ms=0, voice_mode="tone", pace=50.0) as sim:
        sim.add_script(DEFAULT_KEY, [{"say": text} for text in first])
        ours = settings(tmp_path, sim).model_copy(update={"brain_path": brains})
        found = voiced_line(ours)
        assert found is not None
        running = asyncio.create_task(keep_lines_voiced(ours, every_s=0.2))
        try:
            await sim.wait_for(lambda: all(found(t) is not None for t in first), within=60)
            # the owner rewords the hold line: the worker has the model read it, and only it
            edited = "One moment please, I'm checking that for you."
            data["calls"]["model_down"] = {"hold_line": edited}
            sim.add_script(DEFAULT_KEY, [{"say": edited}])
            asked = len(texts_asked(sim))
            # saved as an editor does, whole: the worker never reads half a file
            (brains / "plumbing.yaml.new").write_text(yaml.safe_dump(data, sort_keys=False))
            os.replace(brains / "plumbing.yaml.new", brains / "plumbing.yaml")
            await sim.wait_for(lambda: found(edited) is not None, within=60)
            assert texts_asked(sim)[asked:] == [edited]
        finally:
            running.cancel()
    library = FallbackLibrary(load_brains(brains).all, tmp_path / "espeak", voiced=found)
    audio = library.for_brain(load_brains(brains).all[0])
    assert audio.lines["hold"] == edited and audio.pcm["hold"] == found(edited)
