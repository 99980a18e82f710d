"""Which words a caller's pause may stop on without ending their sentence (agent/unfinished.py), and the
delays the turn pacing sets from them: a pause waits a little for its words, is held open while they
stop unfinished, and ends at the usual delay once they do not."""

from __future__ import annotations

from typing import Any

import pytest

from agent.settings import SettingsError, load_settings
from agent.turn_pacing import WORDS_WAIT_S, DictationPacing
from agent.unfinished import sounds_unfinished
from tests.agent.test_turn_model import _Session as _PacedSession


@pytest.mark.parametrize("words", [
    "I'm calling about", "um", "Uh...", "I was wondering if you could, uh,", "I'd like to get a quote for",
    "It's for my mother's house and", "We have a leak under the", "My name is, uh", "Do you guys do, like,",
    "I need to", "because", "It's about my", "a quote for —",
    # openers alone, an announcing "is", a place's "on"
    "Hi,", "So", "Hi, yeah,", "Hello. Yes,", "Okay, so", "Good morning", "So the thing is",
    "My question is", "What I need is", "The problem was", "It's for my mother's house, she lives over on",
    "He's out at", "We're based in",
])  # fmt: skip
def test_a_sentence_does_not_end_on_these(words: str) -> None:
    assert sounds_unfinished(words)


@pytest.mark.parametrize("words", [
    "My kitchen sink is leaking.", "Yes, I do.", "It is.", "I think so.", "Hold on.", "Can you come in?",
    "Who am I speaking with?", "What is that for?", "Mhm.", "Hmm", "Thursday morning", "", "   ", "five oh three",
    "I'd like to get a quote for a new disposal",
    # answers, questions and particles that end a sentence
    "Yeah.", "Okay", "Hello?", "Hi, is this the plumber?", "So so?", "Yes, it is.",
    "I know where the shop is", "That's what it is", "Hang on", "Come on in", "The heater is on",
    "I'd rather stay in", "Good", "Well done", "Morning.", "Yes, morning.", "Afternoon",
    "I don't know what the problem is.", "Not sure what the issue is", "That's the plan",
])  # fmt: skip
def test_these_may_end_a_sentence(words: str) -> None:
    assert not sounds_unfinished(words)


@pytest.mark.parametrize(("language", "words"), [
    ("es", "Tengo una pregunta sobre la"), ("es", "Quería saber si ustedes, eh,"), ("es", "Es para mi"),
    ("es", "Llamo porque"), ("es", "Necesito a alguien para"), ("fr", "J'appelle pour"),
    ("fr", "Il y a une fuite dans la"), ("fr", "Je voudrais, euh"), ("fr", "C'est au sujet de mon"),
    ("es", "Hola, buenos días,"), ("es", "Pues"), ("es", "Lo que pasa es"), ("es", "El problema es"),
    ("fr", "Bonjour,"), ("fr", "Alors"), ("fr", "Le souci, c'est"), ("fr", "Ce que je voudrais, c'est"),
])  # fmt: skip
def test_nor_do_spanish_and_french_ones_on_these(language: str, words: str) -> None:
    assert sounds_unfinished(words, language)
    assert not sounds_unfinished(words, "en")  # each language's list alone is read


@pytest.mark.parametrize(("language", "words"), [
    ("es", "Sí, es para mí."), ("es", "¿Cuántas? Una."), ("es", "¿Y qué?"), ("es", "Es nuestro."),
    ("fr", "J'en veux une."), ("fr", "Envoyez-le."), ("fr", "Vous êtes où?"), ("fr", "Je fais avec."),
    ("es", "Bueno."), ("es", "Sí, eso es"), ("es", "¿Hola?"), ("es", "Buenas noches"), ("fr", "Oui."),
    ("fr", "Allô?"), ("fr", "C'est ça, c'est"), ("en", "Alors"), ("en", "Pues"),
    ("de", "Ich rufe an wegen der"),  # no German list: the silence decides
    ("en", "I'd like a new car"), ("en", "Can you pour"),  # French words, English sentences
])  # fmt: skip
def test_these_may_end_a_sentence_in_their_language(language: str, words: str) -> None:
    assert not sounds_unfinished(words, language)


def _settings(**env: Any) -> Any:
    return load_settings(openai_api_key="sim", _env_file=None, **env)


class _Session(_PacedSession):
    """The pacing's session, with no end-of-turn wait running to restart."""

    user_state = "listening"
    _activity = None


class _Words:
    """A caller's final transcript, as LiveKit hands it to the pacing."""

    def __init__(self, transcript: str) -> None:
        self.transcript = transcript
        self.is_final = True
        self.item_id = None


def test_a_pause_waits_for_its_words_then_holds_or_ends_by_them() -> None:
    settings = _settings()
    session = _Session(settings)
    pacing = DictationPacing(session, settings)  # type: ignore[arg-type]
    pacing.pace_next_turn("Thanks for calling. How can I help?")

    def delays() -> tuple[float, float]:
        return session.options.endpointing["min_delay"], session.options.endpointing["max_delay"]

    assert delays() == (0.45, 3.0)
    pacing.pause_words = "awaited"  # the pause was committed with a speculative reply
    pacing._set_delay()
    assert delays() == (pytest.approx(0.45 + WORDS_WAIT_S), 3.0)
    pacing._on_transcript(_Words("I'm calling about, um"))  # type: ignore[arg-type]
    assert pacing.pause_words == "unfinished" and delays() == (2.5, 3.0)
    pacing._on_transcript(_Words("my kitchen sink."))  # type: ignore[arg-type]
    assert pacing.pause_words == "finished" and delays() == (0.45, 3.0)


def test_the_turn_so_far_is_read_not_the_pause_alone() -> None:
    """"Hi," then "yeah,": each part a caller pauses after may be an answer alone ("Yeah."), but a turn
    of openers has said nothing yet; once the agent speaks, the next turn starts afresh."""
    settings = _settings()
    session = _Session(settings)
    pacing = DictationPacing(session, settings)  # type: ignore[arg-type]
    pacing.pace_next_turn("Thanks for calling. How can I help?")
    for part, then in [("Hi,", "unfinished"), ("yeah,", "unfinished"), ("my sink is blocked.", "finished")]:
        pacing.pause_words = "awaited"
        pacing._on_transcript(_Words(part))  # type: ignore[arg-type]
        assert pacing.pause_words == then, part
    pacing.pace_next_turn("I can book that. Does Tuesday work?")
    pacing.pause_words = "awaited"
    pacing._on_transcript(_Words("yeah,"))  # type: ignore[arg-type]
    assert pacing.pause_words == "finished"


def test_a_hold_longer_than_the_longest_wait_raises_it_too() -> None:
    settings = _settings(unfinished_hold_seconds=4.0)
    session = _Session(settings)
    pacing = DictationPacing(session, settings)  # type: ignore[arg-type]
    pacing.pause_words = "unfinished"
    pacing._set_delay()
    assert (session.options.endpointing["min_delay"], session.options.endpointing["max_delay"]) == (4.0, 4.0)


def test_a_bad_hold_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="UNFINISHED_HOLD_SECONDS"):
        _settings(unfinished_hold_seconds=-1)


def test_a_business_in_two_languages_reads_the_list_of_the_one_the_caller_speaks() -> None:
    settings = _settings()
    session = _Session(settings)
    pacing = DictationPacing(session, settings, languages=["en", "es"])  # type: ignore[arg-type]
    pacing.pace_next_turn("Thanks for calling. How can I help?")
    pacing.pause_words = "awaited"
    pacing._on_transcript(_Words("Tengo una pregunta sobre la"))  # type: ignore[arg-type]
    assert pacing.pause_words == "unfinished"
    pacing._on_transcript(_Words("I have a question about the car"))  # type: ignore[arg-type]
    assert pacing.pause_words == "finished"  # "car" is French for "because", not English
    # a business that answers only in English reads only the English list
    english = DictationPacing(_Session(settings), settings, languages=["en"])  # type: ignore[arg-type]
    english.pause_words = "awaited"
    english._on_transcript(_Words("Tengo una pregunta sobre la"))  # type: ignore[arg-type]
    assert english.pause_words == "finished"
