"""The call's explicit flows: booking, changing an appointment the caller owns, and escalation,
each a LiveKit task with only the tools its step needs, its states enums recorded as the call goes."""
