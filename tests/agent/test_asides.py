"""Which committed items are the caller's short sounds over a reply (asides, agent/model_link.py), whose
words alone decide whether they stay: a refused aside must not make the caller's next turn one."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from livekit.plugins import openai

from agent.model_link import LinkedSession


def _session(monkeypatch: pytest.MonkeyPatch) -> tuple[LinkedSession, list[str]]:
    """A session with a second of the caller's audio pushed and the wire replaced by a list."""
    session = LinkedSession.__new__(LinkedSession)  # the bookkeeping reads nothing of the connection
    session._aside_pending, session.asides = False, set()
    session._current_generation, session._response_created_futures = None, {}
    session._pushed_duration_s = 1.0
    sent: list[str] = []
    monkeypatch.setattr(openai.realtime.RealtimeSession, "commit_audio", lambda self: sent.append("commit"))
    return session, sent


def _item_added(session: LinkedSession, item_id: str) -> None:
    item: Any = SimpleNamespace(id=item_id, type="message", role="user")
    session._on_remote_item(SimpleNamespace(item=item))  # type: ignore[arg-type]


def test_the_item_of_an_aside_commit_is_an_aside(monkeypatch: pytest.MonkeyPatch) -> None:
    session, sent = _session(monkeypatch)
    assert session.commit_aside(lambda words: True) and sent == ["commit"]
    _item_added(session, "item_mhm")
    _item_added(session, "item_next_turn")
    assert session.asides == {"item_mhm"}


@pytest.mark.parametrize("next_commit", ["the turn's", "a pause's"])
def test_after_a_refused_aside_the_callers_next_turn_is_no_aside(
    monkeypatch: pytest.MonkeyPatch, next_commit: str
) -> None:
    session, sent = _session(monkeypatch)
    assert session.commit_aside(lambda words: True)  # the server refuses it: no item comes
    session._pushed_duration_s = 1.0
    if next_commit == "the turn's":
        session.commit_audio()  # LiveKit commits the caller's turn
    else:
        assert session.commit_heard()  # the dictation pacing commits a pause
    _item_added(session, "item_yes")
    assert sent == ["commit", "commit"] and session.asides == set()
