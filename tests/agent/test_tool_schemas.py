"""A flow's switch sends the model its tool list again; each tool's schema is built once per process
(agent/model_link.py), and what is sent is the plugin's own schema, unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from livekit.agents import llm
from livekit.plugins import openai

from agent.brain import load_brain
from agent.flows import appointments, booking
from agent.model_link import LinkedSession
from agent.receptionist import receptionist_tools

BRAIN = load_brain(Path(__file__).resolve().parents[2] / "brains" / "plumbing.yaml")


def _sent(tools: list) -> list[dict]:
    return [t.model_dump(by_alias=True, exclude_unset=True) for t in tools]


def test_each_tool_schema_is_built_once_and_is_the_plugins_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session = LinkedSession.__new__(LinkedSession)  # the conversion reads nothing of the connection
    lists = [receptionist_tools(BRAIN), booking.task_tools(BRAIN), appointments.task_tools(BRAIN)]
    plugins_own = [
        _sent(openai.realtime.RealtimeSession._convert_tools_to_oai(session, tools))
        for tools in lists
    ]
    built: list[str] = []
    build = llm.utils.build_legacy_openai_schema

    def counted(tool: llm.FunctionTool, **kwargs: object) -> dict:
        built.append(tool.info.name)
        return build(tool, **kwargs)

    monkeypatch.setattr(llm.utils, "build_legacy_openai_schema", counted)
    for tools, expected in zip(lists, plugins_own, strict=True):
        assert _sent(session._convert_tools_to_oai(tools)) == expected
    # the receptionist's list again, as when a flow hands the call back: nothing is rebuilt
    built.clear()
    for tools, expected in zip(lists, plugins_own, strict=True):
        assert _sent(session._convert_tools_to_oai(tools)) == expected
    assert built == []
