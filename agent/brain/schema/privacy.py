"""The brain's `privacy` section: how long a call's personal data is kept, and whether a caller may
prove a number they state with a code texted to it."""

from __future__ import annotations

from pydantic import Field

from agent.brain.schema.fields import Model


class Privacy(Model):
    # days a call's personal data (caller number, transcript, tool calls, leads, messages, the names and
    # numbers on past appointments) is kept; `receptionist retention` strips what is older. Left out:
    # kept forever. At least a day, so a sweep never reaches a call still in progress.
    retain_days: int | None = Field(default=None, ge=1, le=36500)
    # a caller may prove a number they state (not the one they call from) with a one-time code texted
    # to it; needs notify.caller_texts (the texts go from the business's number)
    verify_by_text: bool = False
