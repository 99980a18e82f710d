"""The README's console-with-simulator recipe at a person's pace and at LOG_LEVEL=INFO: someone who
reads the greeting and waits past the silence check-in still gets the scripted answer to their
question, and the console shows the conversation, not DEBUG lines."""

from __future__ import annotations

from pathlib import Path

from tests.agent.test_console_records import console_with


async def test_a_person_who_waits_before_typing_gets_the_scripted_answer(db_url: str, tmp_path: Path) -> None:
    async with console_with(db_url, tmp_path / "spill", tmp_path) as console:
        await console.shows("How can I help?")
        # the plumbing brain checks on a quiet caller after 8 s; a reader takes that long
        await console.shows("Are you still there?", within=40)
        console.type("What are your hours on Saturday?")
        await console.shows("On Saturday we're open 8 AM to 12 PM.")
        console.ctrl_c()
        await console.exit_code()
    seen = console.output.decode(errors="replace")
    assert "scripted to call" not in seen and "{output" not in seen
    noisy = [line for line in seen.splitlines() if "DEBUG" in line]
    assert not noisy, f"{len(noisy)} DEBUG lines at LOG_LEVEL=INFO, e.g. {noisy[:3]}"
