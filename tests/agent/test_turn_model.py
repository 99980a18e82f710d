"""TURN_MODEL: which audio end-of-turn model a call gets, what it needs from the VAD, and how the
dictation pacing keeps it out of dictated values (agent/turn_model.py, agent/turn_pacing.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from livekit.agents.inference import TurnDetector

from agent.settings import SettingsError, load_settings
from agent.smart_turn import SmartTurnDetector
from agent.turn_model import VAD_SILENCE, detector, with_vad_silence
from agent.turn_pacing import DictationPacing


def _settings(**overrides: Any) -> Any:
    return load_settings(openai_api_key="sim", _env_file=None, **overrides)


def test_no_model_unless_asked_for() -> None:
    assert detector(_settings()) is None


async def test_v1_mini_with_the_models_own_threshold_or_the_one_set() -> None:
    own = detector(_settings(turn_model="v1-mini"))
    assert isinstance(own, TurnDetector)
    assert round(await own.unlikely_threshold(None), 2) == 0.36  # LiveKit's own for English
    set_here = detector(_settings(turn_model="v1-mini", turn_model_threshold=0.5))
    assert await set_here.unlikely_threshold(None) == 0.5


async def test_smart_turn_takes_the_threshold_set() -> None:
    found = detector(_settings(turn_model="smart-turn", turn_model_threshold=0.2))
    assert isinstance(found, SmartTurnDetector)
    assert await found.unlikely_threshold(None) == 0.2


def test_a_model_raises_the_vad_silence_livekit_needs_and_keeps_a_longer_one() -> None:
    assert with_vad_silence(_settings(turn_model="v1-mini")).vad_min_silence_duration == VAD_SILENCE
    assert with_vad_silence(_settings(turn_model="v1-mini", vad_min_silence_duration=0.4)).vad_min_silence_duration == 0.4


@pytest.mark.parametrize(("env", "said"), [
    ({"turn_model": "v2-big"}, "TURN_MODEL"),
    ({"turn_model_threshold": 1.5}, "TURN_MODEL_THRESHOLD"),
])  # fmt: skip
def test_a_bad_turn_model_setting_is_refused_by_name(env: dict[str, Any], said: str) -> None:
    with pytest.raises(SettingsError, match=said):
        _settings(**env)


class _Session:
    """What the pacing reads and sets on a session: its endpointing options and two events."""

    def __init__(self, settings: Any) -> None:
        self.options = SimpleNamespace(endpointing={"min_delay": settings.min_endpointing_delay,
                                                    "max_delay": settings.max_endpointing_delay})  # fmt: skip
        self.agent_state = "listening"
        self.llm = None

    def on(self, *_: Any) -> None:
        pass

    def update_options(self, *, endpointing_opts: dict[str, float]) -> None:
        self.options.endpointing.update(endpointing_opts)


@pytest.mark.parametrize(("asked", "wait"), [
    ("How can I help you today?", (0.45, 3.0)),  # an open question: the model may wait up to the max
    ("Sure. What's the best phone number to reach you?", (3.0, 3.0)),  # a number under way: its transcript
    ("Do you have your confirmation code?", (3.0, 3.0)),
    ("Thanks. How do you spell Kowalski?", (3.0, 3.0)),  # a name it has heard: its letters decide
    ("What's the house number for the visit address?", (1.2, 3.0)),  # no end to judge: the model may stretch
    ("Could you spell your last name for me?", (1.2, 3.0)),
    ("Thanks, I have that. Anything else?", (0.45, 3.0)),
])  # fmt: skip
def test_while_a_value_is_dictated_the_model_cannot_stretch_the_wait(asked: str, wait: tuple[float, float]) -> None:
    settings = _settings(turn_model="v1-mini")
    session = _Session(settings)
    pacing = DictationPacing(session, settings)  # type: ignore[arg-type]
    pacing.pace_next_turn("Sure. What's the best phone number to reach you?")
    pacing.pace_next_turn(asked)
    assert (session.options.endpointing["min_delay"], session.options.endpointing["max_delay"]) == wait
