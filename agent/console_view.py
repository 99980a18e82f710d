"""`console --text` for a developer: LiveKit's text console prints only the replies to what is typed,
so the agent's own turns (the greeting, the check on a quiet caller, the goodbye) are printed here in
the console's style, and a developer reads the whole call instead of hunting for it in log lines."""

from __future__ import annotations

import logging
from typing import Any

from livekit.agents import AgentSession, llm

from agent.livekit_internals import agents_console, typed_turn_running

log = logging.getLogger("receptionist.console")


def show_the_agents_own_turns(session: AgentSession[Any]) -> None:
    """In console text mode only; nothing happens on a phone call or in audio mode."""
    from rich.text import Text

    console = agents_console()
    if console is None or not console.enabled:  # another LiveKit version's console keeps its own view
        return

    def on_item(ev: Any) -> None:
        item = ev.item
        if not isinstance(item, llm.ChatMessage) or item.role != "assistant" or not item.text_content:
            return
        if console.console_mode != "text":
            return
        if typed_turn_running(session):  # LiveKit prints the replies of a typed turn itself
            return
        console.console.print()
        console.console.print(Text.assemble(("  \u25cf ", "#6BCB77"), ("Agent", "bold #6BCB77")))
        for line in item.text_content.split("\n"):
            console.console.print(Text(f"    {line}"))

    session.on("conversation_item_added", on_item)
