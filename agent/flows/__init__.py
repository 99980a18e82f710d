"""The call's explicit flows (booking, and changing a booking the caller owns), each a LiveKit task with only the tools its step needs,
its states enums recorded as the call goes."""
