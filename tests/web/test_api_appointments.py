"""An owner's script cancels and moves appointments through the API, by the Appointments page's own
path: the same refusals (a taken slot, outside hours, already begun, another owner's), as JSON and as
/api/v1/openapi.json describes them, and Postgres holds what the page would have left."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from agent.store.db import open_pool
from tests.web.conftest import ROOT, log_in
from tests.web.test_api import Described, _bearer, _token
from tests.web.test_console import DENTAL, PLUMBING
from tests.web.test_owner_pages import PLUMBING_BRAIN, at, book, open_weekday, rows
from web.app import ConsoleConfig

CANCEL, MOVE = "/appointments/{appointment_id}/cancel", "/appointments/{appointment_id}/move"


@pytest.fixture
def console_config(db_url: str) -> ConsoleConfig:
    return ConsoleConfig(db_url, brain_path=ROOT / "brains")  # a move keeps to the brain's hours


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = await open_pool(db_url, min_size=1, max_size=2)
    yield pool
    await pool.close()


async def test_a_script_moves_and_cancels_with_the_pages_rules(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str, pool: AsyncConnectionPool
) -> None:
    day = open_weekday()
    dana = await book(pool, at(day, 9), "Dana Whitfield")
    sam = await book(pool, at(day, 13), "Sam Ortiz")
    theirs = await book(pool, at(day, 11), "Jordan Reyes", business=DENTAL, phone="+15035550177")
    add_user("ann@rosecity.example", PLUMBING)
    ann = _bearer(_token(db_url, "ann@rosecity.example"))
    described = Described((await console.get("/api/v1/openapi.json")).json())

    async def move(appointment: uuid.UUID, body: object, status: int) -> dict[str, object]:
        got = await console.post(f"/api/v1/appointments/{appointment}/move", json=body, headers=ann)
        return described(got, "post", MOVE, status)

    before = rows(db_url)
    taken = await move(dana.id, {"start": f"{day}T13:30"}, 409)  # inside Sam's 13:00-14:30
    assert taken["error"].startswith(f"{day} 13:30 is taken by another appointment: nothing was changed")
    assert "outside our opening hours" in (await move(dana.id, {"start": f"{day}T19:00"}, 400))["error"]
    assert "30-minute grid" in (await move(dana.id, {"start": f"{day}T10:10"}, 400))["error"]
    assert "YYYY-MM-DD HH:MM" in (await move(dana.id, {"start": "next tuesday"}, 400))["error"]
    for body in ({}, {"start": 9}, ["2026-12-01T10:00"], {"start": f"{day}T15:00", "end": "later"}):
        assert "the body is JSON" in (await move(dana.id, body, 400))["error"], body
    await move(theirs.id, {"start": f"{day}T14:00"}, 404)  # another owner's, as if it never was
    await move(uuid.uuid4(), {"start": f"{day}T14:00"}, 404)
    assert rows(db_url) == before

    moved = await move(dana.id, {"start": f"{day}T15:00"}, 200)
    # the service's hour and the shop's buffer, as the reschedule tool books it; a new row, the old kept
    assert moved["status"] == "booked" and moved["id"] != str(dana.id)
    assert datetime.fromisoformat(str(moved["start"])) == at(day, 15)
    assert datetime.fromisoformat(str(moved["end"])) == at(day, 16, 30)
    assert sorted(r[1] for r in rows(db_url) if r[0] == "Dana Whitfield") == ["booked", "rescheduled"]

    cancel = f"/api/v1/appointments/{sam.id}/cancel"
    done = described(await console.post(cancel, headers=ann), "post", CANCEL)
    assert done["status"] == "cancelled" and done["customer_name"] == "Sam Ortiz"
    again = described(await console.post(cancel, headers=ann), "post", CANCEL, 409)
    assert "already cancelled or moved" in again["error"]
    described(await console.post(f"/api/v1/appointments/{theirs.id}/cancel", headers=ann), "post", CANCEL, 404)
    # what has already begun is past changing, for the owner as for a caller
    yesterday = await book(pool, at(datetime.now(PLUMBING_BRAIN.tz).date() - timedelta(days=1), 10), "Lee Park")
    late = described(await console.post(f"/api/v1/appointments/{yesterday.id}/cancel", headers=ann),
                     "post", CANCEL, 409)  # fmt: skip
    assert "already begun" in late["error"]
    assert sorted(rows(db_url)) == sorted([
        ("Dana Whitfield", "rescheduled", at(day, 9)), ("Sam Ortiz", "cancelled", at(day, 13)),
        ("Jordan Reyes", "booked", at(day, 11)), ("Dana Whitfield", "booked", at(day, 15)),
        ("Lee Park", "booked", yesterday.start)])  # fmt: skip


async def test_a_browser_session_changes_an_appointment_only_with_its_csrf_token(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str, pool: AsyncConnectionPool
) -> None:
    day = open_weekday()
    dana = await book(pool, at(day, 9), "Dana Whitfield")
    add_user("ann@rosecity.example", PLUMBING)
    await log_in(console, "ann@rosecity.example")
    described = Described((await console.get("/api/v1/openapi.json")).json())
    cancel = f"/api/v1/appointments/{dana.id}/cancel"
    described(await console.post(cancel), "post", CANCEL, 403)
    described(await console.post(f"/api/v1/appointments/{dana.id}/move", json={"start": f"{day}T15:00"}),
              "post", MOVE, 403)  # fmt: skip
    assert [r[1] for r in rows(db_url)] == ["booked"]
    csrf = (await console.get("/")).text.split('"X-CSRF-Token": "', 1)[1].split('"', 1)[0]
    described(await console.post(cancel, headers={"X-CSRF-Token": csrf}), "post", CANCEL)
    assert [r[1] for r in rows(db_url)] == ["cancelled"]
