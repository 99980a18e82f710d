"""The open-sentence corpus's pauses: what the labels say is what the audio holds."""

from __future__ import annotations

import numpy as np
import pytest

from bench.open_turns import stretch_pauses, trim
from bench.turn_corpus import silences

RATE = 16_000


def _voice(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(RATE * seconds)) / RATE
    return (6000 * np.sin(2 * np.pi * 180 * t) + rng.normal(0, 800, t.size)).astype(np.int16)


def _gap(ms: int) -> np.ndarray:
    return np.zeros(RATE * ms // 1000, dtype=np.int16)


def _sentence() -> tuple[bytes, list[np.ndarray]]:
    """Three words, a 60 ms stop inside the first (not a pause), comma silences of 250 and 180 ms, and
    the synthesizer's padding at both ends."""
    words = [_voice(0.4, 1), _voice(0.3, 2), _voice(0.8, 3), _voice(0.6, 4)]
    pcm = np.concatenate([_gap(120), words[0], _gap(60), words[1], _gap(250), words[2], _gap(180), words[3], _gap(300)])
    return pcm.tobytes(), words


def test_the_comma_silences_become_the_drawn_pauses_and_the_voice_is_untouched() -> None:
    pcm, words = _sentence()
    out = stretch_pauses(trim(pcm, RATE), RATE, [1900, 200])

    found = silences(out, RATE)
    holds = [(s.at_s, s.ms) for s in found if s.label == "hold"]
    assert [ms for _, ms in holds] == [1900, 200]  # the 60 ms stop is under the 100 ms that counts
    assert holds[0][0] == pytest.approx(0.76, abs=0.011)  # after the first two words and the stop
    assert found[-1].label == "end"
    assert found[-1].at_s == pytest.approx(0.76 + 1.9 + 0.8 + 0.2 + 0.6, abs=0.011)
    voice = np.frombuffer(out, dtype=np.int16)
    assert np.array_equal(voice[voice != 0], np.concatenate(words)[np.concatenate(words) != 0])


def test_the_padding_before_the_first_word_is_not_a_pause() -> None:
    pcm, _ = _sentence()
    trimmed = trim(pcm, RATE)
    assert silences(trimmed, RATE)[0].at_s > 0.3  # the first silence is the comma, not the padding
    assert len(trimmed) // 2 == RATE * (400 + 60 + 300 + 250 + 800 + 180 + 600) // 1000  # first voice to last


def test_a_sentence_with_fewer_silences_than_commas_is_refused() -> None:
    pcm = np.concatenate([_voice(0.5, 1), _gap(200), _voice(0.5, 2)]).tobytes()
    with pytest.raises(ValueError, match="1 silences for 2 commas"):
        stretch_pauses(pcm, RATE, [800, 900])
