"""The owner's ICS feed: /calendar/<token>.ics, which Google, Outlook and Apple calendars subscribe to.
The token is the only key (calendar apps fetch without a login): an unknown token is a 404, the same
as any URL that does not exist, so a guess learns nothing. `receptionist calendar feed-url` prints it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from agent.calendar.events import feed
from agent.store.calendar import business_of_feed, feed_appointments

FEED_PAST = timedelta(days=30)  # bookings that ended up to a month ago stay on the owner's calendar


async def calendar_feed(request: Request) -> Response:
    token = request.path_params["token"]
    pool = request.app.state.pool
    business = await business_of_feed(pool, token) if len(token) <= 100 else None
    brain = request.app.state.brains.get(business) if business is not None else None
    if brain is None:
        raise HTTPException(404)
    bookings = await feed_appointments(pool, business, datetime.now(UTC) - FEED_PAST)
    return Response(
        feed(brain, bookings), media_type="text/calendar; charset=utf-8",
        # the URL is a secret: no shared cache may keep a copy of what it shows
        headers={"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"},
    )  # fmt: skip
