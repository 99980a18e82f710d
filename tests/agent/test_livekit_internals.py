"""The private LiveKit members the call leans on (agent/livekit_internals.py) are all still there: a
LiveKit upgrade that moves one fails here, by name, instead of on a caller's line."""

from __future__ import annotations

import pytest
from livekit.plugins.openai.realtime.realtime_model import RealtimeSession

from agent import livekit_internals


def test_every_private_member_we_use_is_in_the_installed_livekit() -> None:
    assert livekit_internals.missing() == []


def test_a_member_gone_in_an_upgrade_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(RealtimeSession, "_handle_response_done")
    assert livekit_internals.missing() == ["RealtimeSession._handle_response_done"]


def test_nothing_else_in_the_agent_reaches_into_livekit_privately() -> None:
    import re
    from pathlib import Path

    root = Path(livekit_internals.__file__).parent
    private_import = re.compile(r"from livekit[\w.]*\._|from livekit[\w.]* import _[A-Za-z]|\._(onnx_session|opts|global_run_state|current_generation|done_fut)\b")
    offenders = [
        str(path.relative_to(root.parent))
        for path in root.rglob("*.py")
        if path.name != "livekit_internals.py" and private_import.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
