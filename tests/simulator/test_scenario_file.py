"""A scenario file with a mistake is refused with the file and line, never half-read."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.scenario import ScenarioError, load_scenario

SCENARIO = """\
name: twice
brain: brains/plumbing.yaml
clock: "2026-11-24T10:00:00-08:00"
greeting:
  - say: "Hi there"
turns:
  - caller: "Hi"
    model:
      - say: "Hello"
expect:
  said: ["Hello"]
  report: {flows: {escalation: {steps: [requested]}}}
  outcome: answered
  report: {escalation: {result: accepted}}
"""


def test_an_expectation_written_twice_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text(SCENARIO)
    with pytest.raises(ScenarioError) as e:
        load_scenario(path)
    assert f"{path}:14: expect.report appears twice" in str(e.value)


def test_the_same_scenario_written_once_loads(tmp_path: Path) -> None:
    path = tmp_path / "once.yaml"
    path.write_text(SCENARIO.replace("  report: {escalation: {result: accepted}}\n", ""))
    scenario = load_scenario(path)
    assert scenario.name == "twice"


def test_every_committed_scenario_loads() -> None:
    root = Path(__file__).resolve().parents[2]
    paths = sorted((root / "tests" / "scenarios").glob("*.yaml")) + sorted(
        (root / "bench" / "scenarios").glob("*.yaml")
    )
    assert paths
    for path in paths:
        load_scenario(path)


RECORDED = """\
name: recorded
brain: brains/plumbing.yaml
clock: "2026-11-24T10:00:00-08:00"
greeting:
  - say: "Hi there"
turns:
  - caller: "So ... the bill"
    audio: [clips/one.wav, clips/two.wav]
    model:
      - say: "Hello"
"""


def test_a_turns_recordings_are_found_beside_the_scenario_and_counted_against_its_phrases(tmp_path: Path) -> None:
    path = tmp_path / "recorded.yaml"
    path.write_text(RECORDED)
    (tmp_path / "clips").mkdir()
    for name in ("one.wav", "two.wav"):
        (tmp_path / "clips" / name).write_bytes(b"")
    scenario = load_scenario(path)
    turn = scenario.turns[0]
    assert [scenario.file(p) for p in turn.audio] == [tmp_path / "clips" / "one.wav", tmp_path / "clips" / "two.wav"]
    path.write_text(RECORDED.replace("[clips/one.wav, clips/two.wav]", "[clips/one.wav]"))
    with pytest.raises(ScenarioError) as e:
        load_scenario(path)
    assert "`audio` has 1 recordings for 2 phrases of `caller`" in str(e.value)


def test_a_missing_recording_is_named() -> None:
    from simulator.recordings import recording

    with pytest.raises(FileNotFoundError, match="no recording at /nowhere/one.wav"):
        recording(Path("/nowhere/one.wav"), 24000)


SPELLED = """\
name: spelled
brain: brains/plumbing.yaml
clock: "2026-11-24T10:00:00-08:00"
caller_voice: VOICE
greeting:
  - say: "Hi there"
turns:
  - caller: "WORDS"
    voice: recorded
"""


@pytest.mark.parametrize(("voice", "words", "refused"), [
    ("es", "cinco cero ... tres", None),
    ("fr-fr", "cinq zéro ... arobase", None),
    ("es", "cinco ... five", "turns[0].caller: no recording of 'five' in es"),
    ("de", "eins", "no recorded voice speaks 'de': recorded voices are en, es, fr"),
])  # fmt: skip
def test_a_recorded_caller_says_only_words_their_languages_voice_recorded(
    tmp_path: Path, voice: str, words: str, refused: str | None
) -> None:
    path = tmp_path / "spelled.yaml"
    path.write_text(SPELLED.replace("VOICE", voice).replace("WORDS", words))
    if refused is None:
        assert load_scenario(path).turns[0].phrases == [p.strip() for p in words.split("...")]
        return
    with pytest.raises(ScenarioError) as e:
        load_scenario(path)
    assert refused in str(e.value)
