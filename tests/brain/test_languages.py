"""A brain's `languages`: validated ISO 639-1 codes, the rules the instructions give the model, the
first language's lines for when the model is down (spoken by espeak-ng in that language), and the
guess at a caller's language the call report records."""

from __future__ import annotations

import copy
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from agent.brain import BrainError, parse_brain, render_instructions
from agent.brain.languages import guess_language
from agent.fallback_audio import FallbackLibrary, _to_model_rate

ROOT = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = yaml.safe_load((ROOT / "brains" / "plumbing.yaml").read_text())
SPANISH_GREETING = "Gracias por llamar a {business}, soy la asistente de IA. ¿En qué le puedo ayudar?"


def brain_text(**changes: Any) -> str:
    data = copy.deepcopy(BASE)
    data.update(changes)
    data["recording"] = {"enabled": False}  # the example's consent line is English
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def test_check_brain_names_each_bad_language_code(tmp_path: Path) -> None:
    bad = tmp_path / "plumbing.yaml"
    bad.write_text(brain_text(languages=["en", "Spanish", "es-MX", "xx", "en"]))
    out = subprocess.run(
        [str(Path(sys.executable).parent / "receptionist"), "check-brain", str(bad)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1, out
    assert f"{bad}: languages[1]: not an ISO 639-1 language code: 'Spanish' (write 'es')" in out.stderr
    assert f"{bad}: languages[2]: not an ISO 639-1 language code: 'es-MX' (write 'es')" in out.stderr
    assert f"{bad}: languages[3]: not an ISO 639-1 language code: 'xx'" in out.stderr


@pytest.mark.parametrize(
    ("languages", "where", "reason"),
    [
        ([], "languages", "must not be empty"),
        (["en", "es", "en"], "languages[2]", "'en' is listed twice"),
        (["es", "en"], "greeting", "reads as English, but the first of languages is Spanish"),
    ],
)
def test_a_bad_language_list_is_refused_at_its_field(languages: list[str], where: str, reason: str) -> None:
    with pytest.raises(BrainError) as caught:
        parse_brain(brain_text(languages=languages), "bad.yaml")
    assert any(w == where and reason in r for w, r in caught.value.problems), caught.value.problems


def test_left_out_the_brain_speaks_english() -> None:
    brain = parse_brain(brain_text())
    assert brain.languages == ["en"]
    assert brain.calls.model_down.voice == "en-us"


def test_a_first_language_without_shipped_lines_needs_its_own() -> None:
    text = brain_text(languages=["de", "en"], greeting="Hallo, hier ist die KI von {business}.")
    with pytest.raises(BrainError) as caught:
        parse_brain(text, "bad.yaml")
    [(where, reason)] = caught.value.problems
    assert where == "calls.model_down.voice" and "no German lines ship" in reason
    written = {"voice": "de", "hold_line": "Einen Moment, bitte.", "transfer_line": "Ich verbinde Sie.",
               "message_line": "Bitte hinterlassen Sie eine Nachricht.", "goodbye_line": "Danke. Auf Wiederhören."}  # fmt: skip
    brain = parse_brain(
        brain_text(languages=["de", "en"], greeting="Hallo, hier ist die KI von {business}.",
                   calls={**BASE["calls"], "model_down": written})  # fmt: skip
    )
    assert brain.calls.model_down.hold_line == "Einen Moment, bitte."
    # written before the busy line existed: a caller of a full fleet hears the brain's own message line
    assert brain.calls.model_down.busy_line == "Bitte hinterlassen Sie eine Nachricht."


def test_the_instructions_carry_the_language_rules() -> None:
    both = render_instructions(parse_brain(brain_text(languages=["en", "es"])))
    assert "You speak English and Spanish. The greeting is in English, as written." in both
    assert "reply in the language the caller speaks when it is English or Spanish" in both
    assert "you can help in English and Spanish, but that you can take a message" in both
    assert "call take_message with the message written in English" in both
    assert "translate the words around them, never the numbers" in both
    only = render_instructions(parse_brain(brain_text()))
    assert "You speak only English." in only and "Spanish" not in only


def _espeak(text: str, voice: str, tmp: Path) -> bytes:
    out = tmp / f"{voice}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(out)], input=text.encode(), check=True)
    with wave.open(str(out), "rb") as w:
        return _to_model_rate(w.readframes(w.getnframes()), w.getframerate())


def test_model_down_lines_are_spoken_in_the_first_language(tmp_path: Path) -> None:
    spanish = parse_brain(brain_text(languages=["es", "en"], greeting=SPANISH_GREETING))
    english = parse_brain(brain_text(languages=["en", "es"]))
    library = FallbackLibrary([spanish, english], tmp_path / "cache")
    hold = library.for_brain(spanish)
    assert hold.lines["hold"] == "Un momento, por favor."
    # the Spanish voice, not the English one reading Spanish words
    heard, es, en = (np.frombuffer(pcm, np.int16).astype(float) for pcm in (
        hold.pcm["hold"], _espeak("Un momento, por favor.", "es", tmp_path),
        _espeak("Un momento, por favor.", "en-us", tmp_path)))  # fmt: skip
    # the same audio up to the resampler's last-bit rounding; the English voice says it another way
    assert len(heard) == len(es) and np.abs(heard - es).max() <= 16
    assert len(heard) != len(en)
    assert library.for_brain(english).lines["hold"] == "One moment, please."


@pytest.mark.parametrize(
    ("said", "language"),
    [
        ("Hola, ¿cuál es el horario del sábado, por favor?", "es"),
        ("Bonjour, je voudrais parler avec le plombier, s'il vous plaît.", "fr"),
        ("What are your hours on Saturday?", "en"),
        ("Guten Tag, ich möchte einen Termin, bitte.", "de"),
        ("Thanks.", None),  # too little to tell
        ("こんにちは", None),  # a language it does not know is unknown, never a wrong guess
    ],
)
def test_the_callers_language_is_guessed_from_common_words(said: str, language: str | None) -> None:
    assert guess_language(said) == language


def test_a_guess_among_a_businesss_languages_leaves_the_others_out() -> None:
    # Spanish and Italian share "una" and "la": among all it is a tie, among en and es it is Spanish
    assert guess_language("Tengo una pregunta sobre la") is None
    assert guess_language("Tengo una pregunta sobre la", among=["en", "es"]) == "es"
    assert guess_language("Tengo una pregunta sobre la", among=["en"]) is None  # no English in it
