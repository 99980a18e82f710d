"""Live, cross-replica state in Redis: who is on a call right now (and the calls whose replica died),
per-caller rate limits, slot holds."""

from agent.live.state import ActiveCall, LiveState, LostCall

__all__ = ["ActiveCall", "LiveState", "LostCall"]
