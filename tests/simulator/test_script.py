"""Model steps and `{output[...]}` rendering: the scenario author's side of the simulator."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from simulator.script import ModelStep, Script, render_say


def test_a_step_needs_say_or_tool_and_rejects_unknown_keys() -> None:
    assert ModelStep(say="Hi").tool is None
    assert ModelStep(tool="get_hours", args={"day": "monday"}).args == {"day": "monday"}
    with pytest.raises(ValidationError):
        ModelStep()
    with pytest.raises(ValidationError):
        ModelStep(say="Hi", speak="typo")
    with pytest.raises(ValidationError):
        ModelStep(say="Hi", args={"x": 1})


def test_output_placeholders_read_json_and_python_reprs() -> None:
    json_out = '{"open": "08:00", "slots": [{"at": "09:30"}], "ok": true}'
    assert render_say("{output[open]} {output[slots][0][at]} {output[ok]}", json_out) == (
        "08:00 09:30 yes",
        [],
    )
    # LiveKit sends str(dict) for a tool returning a dict
    assert render_say("{output[open]}", "{'open': '08:00'}") == ("08:00", [])
    assert render_say("Done: {output}", "Booked, code AB12.") == ("Done: Booked, code AB12.", [])
    assert render_say("{{literal}} {output[n]}", '{"n": 3}') == ("{literal} 3", [])


def test_broken_placeholders_render_verbatim_and_are_reported() -> None:
    text, problems = render_say("We open at {output[opens]}.", '{"open": "08:00"}')
    assert text == "We open at {output[opens]}."
    assert len(problems) == 1
    text, problems = render_say("{output[a]} and {name}", None)
    assert text == "{output[a]} and {name}"
    assert len(problems) == 2
    text, problems = render_say("{output[0]}", "not json at all")
    assert text == "{output[0]}" and problems


def test_script_consumes_steps_and_transcripts_in_order() -> None:
    script = Script.of([{"say": "one"}, {"tool": "t"}])
    script.queue_transcript("hello")
    assert script.next_step().say == "one"
    assert script.next_step().tool == "t"
    assert script.next_step() is None and script.exhausted
    assert script.next_transcript() == "hello"
    assert script.next_transcript() == ""
    assert len(script.problems) == 2  # ran out of steps, and of transcripts


def test_a_step_given_back_is_replayed_and_a_request_past_the_end_is_withdrawn() -> None:
    script = Script.of([{"say": "one"}])
    first = script.next_step()
    script.give_back(first)
    assert script.next_step().say == "one"
    assert script.next_step() is None and script.problems
    script.give_back(None)
    assert script.problems == []
