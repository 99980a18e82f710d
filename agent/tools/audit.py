"""The one decorator every receptionist tool goes through: it lets the flow under way refuse a tool
called out of step, times the call, journals it, and turns unexpected failures into a sentence the
model can act on instead of a stack trace."""

from __future__ import annotations

import functools
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from livekit.agents import RunContext, ToolError, function_tool
from livekit.agents.llm import ToolResult

from agent.call import CallContext

log = logging.getLogger("receptionist.tools")

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_FALLBACK = (
    "Something went wrong on my side with that request. Apologise briefly, and offer to take a "
    "message so a person can call the caller back."
)


def _call_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> CallContext | None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, RunContext):
            return value.userdata
    return None


def _arguments(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The call's arguments by name (LiveKit may pass them positionally), minus the RunContext."""
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs).arguments
    except TypeError:
        bound = dict(kwargs)
    out = {}
    for k, v in bound.items():
        if isinstance(v, RunContext):
            continue
        try:
            # jsonb refuses \u0000: what the model sent is kept, minus NUL
            out[k] = json.loads(json.dumps(v).replace("\\u0000", ""))
        except (TypeError, ValueError):
            out[k] = str(v).replace("\x00", "")
    return out


def receptionist_tool(fn: F | None = None, *, answers: bool = True) -> Any:
    """`function_tool` plus auditing: every call lands in the journal with its latency and outcome.

    `answers=False` for a tool whose success alone tells the caller nothing (the way into a flow: the
    flow's own tools decide the call's outcome)."""
    if fn is None:
        return lambda f: receptionist_tool(f, answers=answers)

    @functools.wraps(fn)
    async def audited(*args: Any, **kwargs: Any) -> Any:
        call = _call_of(args, kwargs)
        started = time.perf_counter()
        result: Any = None
        error: str | None = None
        flow = call.flow if call is not None else None
        # by name, once: the flow's gate reads them and the journal keeps them
        arguments = _arguments(fn, args, kwargs) if call is not None else {}
        try:
            if flow is not None:
                # the flow under way refuses a tool called out of step (agent/flows/)
                flow.check(fn.__name__, arguments)
            result = await fn(*args, **kwargs)
            if call is not None and answers:
                call.set_outcome("answered")  # at least: the caller got a grounded answer
            if flow is not None:
                flow.advance(fn.__name__, arguments, result)
                if flow.ended:
                    # the tool that ends a flow asks for no reply: the receptionist, with the call
                    # back, answers once, with what the flow did and the whole call's tools
                    return ToolResult(result, reply_required=False)
            return result
        except ToolError as e:
            error = e.message.replace("\x00", "")
            raise
        except Exception as e:  # a bug or an outage must not become dead air
            log.exception("tool %s failed", fn.__name__)
            error = f"{type(e).__name__}: {e}".replace("\x00", "")
            raise ToolError(_FALLBACK) from e
        finally:
            if call is not None:
                call.record_tool_call(
                    name=fn.__name__,
                    arguments=arguments,
                    result=None
                    if error is not None
                    else (_as_text(result) or "").replace("\x00", "") or None,
                    error=error,
                    latency_ms=(time.perf_counter() - started) * 1000.0,
                )

    return function_tool(audited)


def _as_text(result: Any) -> str | None:
    if isinstance(result, ToolResult):
        result = result.output  # what the model was told; whether it answers is not the journal's
    if result is None:
        return None
    if isinstance(result, str):
        return result
    try:
        return json.dumps(result, default=str)
    except TypeError:
        return str(result)
