"""The forkserver loads the brains once for every job process (agent/preload.py); an owner's edit to a
brain file still reaches the job processes started after it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent import preload
from agent.brain import BrainError

ROOT = Path(__file__).resolve().parents[2]


def test_a_brain_edited_after_the_preload_is_loaded_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    brain = tmp_path / "plumbing.yaml"
    shutil.copy(ROOT / "brains" / "plumbing.yaml", brain)
    monkeypatch.setenv("BRAIN_PATH", str(brain))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sim")  # no `.env` here
    before = preload.warm()
    assert before.brains.all[0].business.name == "Rose City Plumbing"
    assert preload.warm() is before  # nothing changed: what the forkserver loaded is used as it is

    brain.write_text(brain.read_text().replace("Rose City Plumbing", "Rose City Plumbing & Heating"))
    after = preload.warm()
    assert after.brains.all[0].business.name == "Rose City Plumbing & Heating"


def test_a_brain_added_to_the_directory_is_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    brains = tmp_path / "brains"
    brains.mkdir()
    shutil.copy(ROOT / "brains" / "plumbing.yaml", brains / "plumbing.yaml")
    monkeypatch.setenv("BRAIN_PATH", str(brains))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sim")
    assert [b.business.name for b in preload.warm().brains.all] == ["Rose City Plumbing"]

    shutil.copy(ROOT / "brains" / "dental.yaml", brains / "dental.yaml")
    assert len(preload.warm().brains.all) == 2


def test_a_bad_edit_fails_the_new_process_with_the_brains_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    brain = tmp_path / "plumbing.yaml"
    shutil.copy(ROOT / "brains" / "plumbing.yaml", brain)
    monkeypatch.setenv("BRAIN_PATH", str(brain))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sim")
    preload.warm()
    brain.write_text("business: [")
    with pytest.raises(BrainError, match="plumbing.yaml"):
        preload.warm()


def test_an_environment_change_reads_the_settings_again_and_keeps_the_brains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LiveKit's worker sets LIVEKIT_URL and its token after the preload (console's job threads saw
    the change and each loaded every brain again): the settings follow the environment, the brains
    loaded from unchanged files are kept."""
    brain = tmp_path / "plumbing.yaml"
    shutil.copy(ROOT / "brains" / "plumbing.yaml", brain)
    monkeypatch.setenv("BRAIN_PATH", str(brain))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sim")
    before = preload.warm()

    monkeypatch.setenv("LIVEKIT_URL", "ws://127.0.0.1:7881")
    after = preload.warm()
    assert after.settings.livekit_url == "ws://127.0.0.1:7881"
    assert after.brains is before.brains and after.vad is before.vad
    assert preload.warm() is after

    other = tmp_path / "dental.yaml"
    shutil.copy(ROOT / "brains" / "dental.yaml", other)
    monkeypatch.setenv("BRAIN_PATH", str(other))
    assert [b.business.name for b in preload.warm().brains.all] == ["Lakeview Family Dental"]
