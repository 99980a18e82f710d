"""The console's Jinja2 templates (autoescaped) and the one way a handler renders a page."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    context.setdefault("viewer", getattr(request.state, "viewer", None))
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def local_time(moment: datetime | None, tz: str = "UTC", fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored instant on the business's clock."""
    return "—" if moment is None else moment.astimezone(ZoneInfo(tz)).strftime(fmt)


def since_start(moment: datetime | None, start: datetime) -> str:
    """m:ss.s into the call, as a transcript reads."""
    if moment is None:
        return ""
    s = max((moment - start).total_seconds(), 0.0)
    return f"{int(s // 60)}:{s % 60:04.1f}"


def seconds(x: float | None) -> str:
    return "—" if x is None else f"{float(x):.1f} s"


templates.env.filters.update(local_time=local_time, since_start=since_start, seconds=seconds)
