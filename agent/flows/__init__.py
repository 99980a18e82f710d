"""The call's explicit flows (booking so far), each a LiveKit task with only the tools its step needs,
its states enums recorded as the call goes."""
