"""A caller dictating a phone number, a confirmation code or an email address in groups after the agent
asked for it: the agent waits for the whole of it instead of answering after the first group, through
pauses longer than any fixed end-of-turn delay, because each part's transcript shows how much is still
to come (agent/dictated.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.dictated import Asked, asked_for
from agent.settings import load_settings
from simulator.recordings import asterisk_sounds
from simulator.runner import CallReport, format_report, simulate
from simulator.scenario import Scenario
from simulator.server import RealtimeSimulator

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = {
    "name": "dictated-number",
    "brain": "brains/plumbing.yaml",
    "clock": "2026-11-24T10:00:00-08:00",
    "greeting": [{"say": "Rose City Plumbing, AI assistant. How can I help?"}],
    "turns": [
        {"caller": "I need someone to call me back.",
         "model": [{"say": "Sure. What's the best phone number to reach you?"}]},
        {"caller": "five oh three ... five five five ... oh one eight seven", "pause_ms": 800,
         "model": [{"say": "Thanks, I have five oh three, five five five, oh one eight seven."}]},
        {"pause_before_ms": 1500, "hangup": True},
    ],
}  # fmt: skip


def test_dictation_is_recognised_from_the_agents_question() -> None:
    for asked in ("What's the best phone number to reach you?", "Could you spell your last name?",
                  "And the address for the visit?", "Do you have your confirmation code?"):  # fmt: skip
        assert asked_for(asked) is not None, asked
    for said in ("Which day suits you?", "Your number is on file.", "How can I help?",
                 "I have five oh three, five five five."):  # fmt: skip
        assert asked_for(said) is None, said


@pytest.mark.parametrize(("question", "asked"), [
    ("Claro. ¿Cuál es el mejor número para comunicarnos con usted?", Asked.PHONE),
    ("¿Me da su número de teléfono?", Asked.PHONE), ("¿Tiene su código de confirmación?", Asked.CODE),
    ("¿Cuál es su correo electrónico?", Asked.EMAIL), ("¿Cómo se escribe su apellido?", Asked.SPELLING),
    ("Por favor, deletree su apellido.", Asked.SPELLING), ("¿Cuál es la dirección de la visita?", Asked.OPEN),
    ("¿Y el código postal?", Asked.OPEN), ("¿Qué día le conviene?", None), ("Su número está en el archivo.", None),
    ("D'accord. Quel est le meilleur numéro pour vous joindre?", Asked.PHONE),
    ("Avez-vous votre code de confirmation?", Asked.CODE), ("Quelle est votre adresse e-mail?", Asked.EMAIL),
    ("Pouvez-vous épeler votre nom?", Asked.SPELLING), ("Comment s'écrit votre nom?", Asked.SPELLING),
    ("Quelle est l'adresse de l'intervention?", Asked.OPEN), ("Quel jour vous convient?", None),
    ("Quelle est votre adresse mail?", Asked.EMAIL), ("¿Cuál es el teléfono de casa?", Asked.PHONE),
    ("¿Cuál es el número de su casa?", Asked.OPEN), ("What's the phone number on the account?", Asked.PHONE),
])  # fmt: skip
def test_what_a_question_in_spanish_or_french_asked_for(question: str, asked: Asked | None) -> None:
    assert asked_for(question) is asked


def test_what_the_question_asked_for() -> None:
    assert asked_for("Thanks. What's your email address?") is Asked.EMAIL
    assert asked_for("Sure. What's the best number to reach you?") is Asked.PHONE
    assert asked_for("Thanks. And the phone number for the booking?") is Asked.PHONE
    assert asked_for("Do you have your confirmation code?") is Asked.CODE
    assert asked_for("What's the house number for the visit address?") is Asked.OPEN
    assert asked_for("Could you spell your last name for me?") is Asked.SPELLING
    assert asked_for("Which day suits you?") is None


def _mid_turn(report: CallReport) -> list[dict[str, Any]]:
    """Agent audio at the caller's ear while they were still dictating (the last caller turn)."""
    said = report.spoken[-1]
    return [h for h in report.heard if h["first_voice"] is not None and said["started"] < h["first_voice"] < said["ended"]]


def _answered_with(report: CallReport, sim: RealtimeSimulator, answer: str) -> str:
    """What the caller had said since the agent's question when the one `answer` was asked for."""
    asked = [a for a in sim.asked if a.key == report.sim_key and a.said == answer]
    assert len(asked) == 1, [(a.number, a.said) for a in sim.asked if a.key == report.sim_key]
    items = asked[0].items
    question = max(i for i, item in enumerate(items) if item["role"] == "assistant")
    return " ".join(item["text"] for item in items[question + 1 :] if item["text"])


async def test_agent_waits_for_the_whole_dictated_number(shared_sim) -> None:
    scenario = Scenario.model_validate(SCENARIO)
    report = await simulate(scenario, audio=True, sim=shared_sim)
    assert not _mid_turn(report), (report.heard, format_report(report))
    readback = SCENARIO["turns"][1]["model"][0]["say"]
    assert _answered_with(report, shared_sim, readback) == "five oh three five five five oh one eight seven"
    assert "five oh three five five five oh one eight seven" in report.caller_said, format_report(report)
    assert report.passed, format_report(report)


async def test_without_dictation_pacing_the_same_caller_is_cut_off(shared_sim) -> None:
    """The control: at the normal 0.5 s endpointing the 800 ms pauses end the turn early."""
    scenario = Scenario.model_validate(SCENARIO)
    settings = load_settings(openai_api_key="sim", dictation_endpointing_delay=0.5, dictation_hold_seconds=0)
    report = await simulate(scenario, audio=True, sim=shared_sim, settings=settings)
    assert _mid_turn(report), (report.heard, format_report(report))


# pauses longer than the 1.2 s dictation delay, which ended these turns before this change; a model that
# takes 300 ms (the scenarios' delay: simulate() sets it on the simulator) and a transcriber 400 ms, both
# after the commit
LONG_PAUSES = {
    "phone": ("Sure. What's the best number to reach you?",
              "five oh three ... five five five ... oh one eight seven", [2000, 1500],
              "Thanks, I have five oh three, five five five, oh one eight seven."),
    # a caller who says what is coming, then pauses to find it
    "phone-after-lead-in": ("Sure. What's the best number to reach you?",
                            "number is ... five oh three five five five ... oh one eight seven", [2000, 1500],
                            "Thanks, I have five oh three, five five five, oh one eight seven."),
    "code": ("Sure. Do you have your confirmation code?", "k seven p ... four m two", [1800],
             "Thanks, that's K7P-4M2."),
    "email": ("Sure. What's your email address?", "o k a ... at n g u ... dot c o m", [1600, 2100],
              "Thanks, I have oka at ngu dot com."),
}  # fmt: skip


async def _heard_only_after_the_last_group(name: str, before: str, question: str, dictated: str, pauses: list[int],
                                           answer: str, settings: Any = None, **overrides: Any) -> None:
    """The caller says `before`, the agent asks `question`, the caller dictates in the recorded voice with
    `pauses`: no agent voice until the last group, then one answer, asked for with every group committed."""
    scenario = Scenario.model_validate({
        **SCENARIO,
        **overrides,
        "name": name,
        "turns": [
            {"caller": before, "model": [{"say": question}]},
            {"caller": dictated, "voice": "recorded", "pauses_ms": pauses, "model": [{"say": answer}]},
            {"pause_before_ms": 1500, "hangup": True},
        ],
    })  # fmt: skip
    async with RealtimeSimulator(transcription_delay_ms=400) as sim:
        report = await simulate(scenario, audio=True, sim=sim, settings=settings)
        assert not _mid_turn(report), (report.heard, format_report(report))
        said = report.spoken[-1]
        after = [h for h in report.heard if h["first_voice"] is not None and h["first_voice"] >= said["ended"]]
        assert len(after) == 1 and not after[0]["interrupted"], (said, report.heard)
        assert _answered_with(report, sim, answer) == dictated.replace(" ...", ""), format_report(report)
    assert report.passed, format_report(report)


@pytest.mark.usefixtures("recorded_voice")
@pytest.mark.parametrize("kind", list(LONG_PAUSES))
async def test_long_pauses_inside_a_number_or_code_are_not_answered(kind: str) -> None:
    question, dictated, pauses, answer = LONG_PAUSES[kind]
    await _heard_only_after_the_last_group(f"dictated-{kind}-long-pauses", "I need to check on my booking.",
                                           question, dictated, pauses, answer)  # fmt: skip


# a caller spelling their name with pauses longer than the 1.2 s dictation delay, which ended these turns
# mid-name before the call knew which name was being spelled: the agent's question names it, or the
# caller said it the turn before
SPELLINGS = {
    "named-in-the-question": ("I'd like to book a visit, the name is Kowalski.", "Thanks. How do you spell Kowalski?"),
    "said-the-turn-before": ("I'd like to book a visit, the name is Kowalski.", "Thanks. Could you spell your last name for me?"),
}  # fmt: skip


@pytest.mark.usefixtures("recorded_voice")
@pytest.mark.parametrize("where", list(SPELLINGS))
async def test_long_pauses_inside_a_spelled_name_are_not_answered(where: str) -> None:
    before, question = SPELLINGS[where]
    await _heard_only_after_the_last_group(f"spelling-{where}-long-pauses", before, question,
                                           "k o w ... a l s ... k i", [2000, 1700], "Thanks, K O W A L S K I.")


@pytest.mark.usefixtures("recorded_voice")
async def test_a_spelling_of_a_name_not_heard_is_paced_by_the_dictation_delay() -> None:
    """The control: with no name to spell towards, a 2 s pause ends the turn as before (1.2 s)."""
    scenario = Scenario.model_validate({
        **SCENARIO,
        "name": "spelling-unknown-name",
        "turns": [
            {"caller": "I'd like to book a visit.", "model": [{"say": "Sure. Could you spell your last name for me?"}]},
            {"caller": "k o w ... a l s k i", "voice": "recorded", "pauses_ms": [2000],
             "model": [{"say": "Thanks, K O W A L S K I."}]},
            {"pause_before_ms": 1500, "hangup": True},
        ],
    })  # fmt: skip
    async with RealtimeSimulator(transcription_delay_ms=400) as sim:
        report = await simulate(scenario, audio=True, sim=sim)
        assert _mid_turn(report), (report.heard, format_report(report))


# the same number in the recorded human voices of a Spanish and a French caller (Asterisk's es_MX and fr_CA
# recordings: a Mexican Spanish and a Canadian French voice, digit by digit as a North American number is
# said there), to a business that speaks English and their language, after the agent asked in it
IN_THEIR_LANGUAGE = {
    "es": ("Necesito que alguien me devuelva la llamada.",
           "Claro. ¿Cuál es el mejor número para comunicarnos con usted?",
           "cinco cero tres ... cinco cinco cinco ... cero uno ocho siete",
           "Gracias, tengo cinco cero tres, cinco cinco cinco, cero uno ocho siete."),
    "fr": ("J'aimerais qu'on me rappelle.", "D'accord. Quel est le meilleur numéro pour vous joindre?",
           "cinq zéro trois ... cinq cinq cinq ... zéro un huit sept",
           "Merci, j'ai cinq zéro trois, cinq cinq cinq, zéro un huit sept."),
}  # fmt: skip


@pytest.mark.parametrize("language", list(IN_THEIR_LANGUAGE))
async def test_a_number_dictated_by_a_spanish_or_french_human_voice_is_not_answered_mid_way(language: str) -> None:
    asterisk_sounds(language)  # fetched before the call, not while the caller speaks
    before, question, dictated, answer = IN_THEIR_LANGUAGE[language]
    await _heard_only_after_the_last_group(
        f"dictated-number-recorded-{language}", before, question, dictated, [2000, 1500], answer,
        brain_overrides={"languages": ["en", language]}, caller_voice=language, model_voice=language,
    )


# the last four digits said in pairs, as callers often do ("twenty-one fifty"), each pair its own group: after
# the first pair the number is two digits short, so that pause is not its end. Each pair is the voice's own
# recordings put together as it says numbers ("soixante-dix-huit": 60 then 18)
IN_PAIRS = {
    "en": ("I'd like a call back, please.", "Sure. What's the best number to reach you?",
           "five oh three ... five five five ... twenty-one ... fifty",
           "Thanks, I have five oh three, five five five, two one five oh."),
    "es": (*IN_THEIR_LANGUAGE["es"][:2], "cinco cero tres ... cinco cinco cinco ... cuarenta y cinco ... sesenta y siete",
           "Gracias, tengo cinco cero tres, cinco cinco cinco, cuatro cinco seis siete."),
    "fr": (*IN_THEIR_LANGUAGE["fr"][:2], "cinq un quatre ... cinq cinq cinq ... soixante-dix-huit ... quatre-vingt-onze",
           "Merci, j'ai cinq un quatre, cinq cinq cinq, sept huit neuf un."),
}  # fmt: skip


@pytest.mark.parametrize("language", list(IN_PAIRS))
async def test_a_number_whose_last_digits_a_human_voice_says_in_pairs_is_not_answered_mid_way(language: str) -> None:
    asterisk_sounds(language)
    before, question, dictated, answer = IN_PAIRS[language]
    languages = {"brain_overrides": {"languages": ["en", language]}} if language != "en" else {}
    await _heard_only_after_the_last_group(
        f"number-in-pairs-recorded-{language}", before, question, dictated, [2000, 1500, 1500], answer,
        caller_voice=language, model_voice=language, **languages,
    )
