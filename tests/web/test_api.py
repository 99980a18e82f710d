"""The console's JSON API as a script uses it: a token from `receptionist users token`, the owner's
scope in every answer (another owner's call is a 404), revoked tokens refused, bad filters a JSON 400,
and every answer shaped as /api/v1/openapi.json describes it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi

from tests.web.conftest import log_in, receptionist
from tests.web.test_console import DENTAL, PLUMBING, _insert_call, _simulate


def _token(db_url: str, email: str, *flags: str) -> str:
    made = receptionist("users", "token", email, *flags, db_url=db_url)
    assert made.returncode == 0, made.stderr
    assert "shown once" in made.stderr
    return made.stdout.strip()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Described:
    """Checks an API answer against the OpenAPI description the app serves."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, got: httpx.Response, method: str, path: str, status: int = 200) -> Any:
        assert got.status_code == status, got.text
        assert got.headers["content-type"] == "application/json"
        responses = self.doc["paths"][path][method]["responses"]
        assert str(status) in responses, f"{method} {path} answers {status}, which it does not describe"
        schema = responses[str(status)]["content"]["application/json"]["schema"]
        validator = Draft202012Validator(schema | {"components": self.doc["components"]},
                                         format_checker=Draft202012Validator.FORMAT_CHECKER)  # fmt: skip
        validator.validate(got.json())
        self.seen.add((method, path))
        return got.json()


async def test_an_owners_token_reads_only_their_businesses_and_every_answer_is_as_described(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str, tmp_path: Path
) -> None:
    _simulate(db_url, tmp_path, "book-drain-cleaning", "take-message")
    with psycopg.connect(db_url) as conn:
        ids = dict(conn.execute("SELECT business, id::text FROM calls").fetchall())
        message_id = conn.execute("SELECT id::text FROM messages").fetchone()[0]
        booked_day = conn.execute("SELECT lower(during)::date::text FROM appointments").fetchone()[0]
        lead_ids = {}
        for business, who in ((PLUMBING, "Pat Plumber-Lead"), (DENTAL, "Dee Dental-Lead")):
            lead_ids[business] = str(uuid.uuid4())
            conn.execute("INSERT INTO leads (id, call_id, business, name, phone, need, answers, score)"
                         " VALUES (%s, %s, %s, %s, '+15035550142', 'a quote', '{\"size\": \"large\"}', 80)",
                         (lead_ids[business], ids[business], business, who))  # fmt: skip
    add_user("ann@rosecity.example", PLUMBING)
    add_user("raj@lakeview.example", DENTAL)
    ann, raj = _bearer(_token(db_url, "ann@rosecity.example")), _bearer(_token(db_url, "raj@lakeview.example"))

    doc = (await console.get("/api/v1/openapi.json")).json()
    validate_openapi(doc)
    described = Described(doc)
    described(await console.get("/api/v1/openapi.json"), "get", "/openapi.json")

    # owner A: her booking call, with its transcript, tool calls and report
    calls = described(await console.get("/api/v1/calls", headers=ann), "get", "/calls")
    assert [c["id"] for c in calls["calls"]] == [ids[PLUMBING]] and calls["next_page"] is None
    call = described(await console.get(f"/api/v1/calls/{ids[PLUMBING]}", headers=ann), "get", "/calls/{call_id}")
    assert call["outcome"] == "booked" and call["business"] == PLUMBING
    assert any("my kitchen sink is clogged" in t["text"] for t in call["turns"])
    assert "book_appointment" in [t["name"] for t in call["tool_calls"]]
    assert call["appointments"][0]["customer_name"] == "Dana Whitfield" and call["report"] is not None
    today = described(await console.get("/api/v1/today", headers=ann), "get", "/today")
    quality = described(await console.get("/api/v1/quality", params={"since": "1000w"}, headers=ann), "get", "/quality")
    assert quality["business"] == PLUMBING and quality["calls"] == 1
    mine = described(await console.get("/api/v1/messages", params={"show": "all"}, headers=ann), "get", "/messages")
    week = described(await console.get("/api/v1/appointments", params={"week": booked_day}, headers=ann),
                     "get", "/appointments")  # fmt: skip
    assert [a["customer_name"] for a in week["appointments"]] == ["Dana Whitfield"]
    leads = described(await console.get("/api/v1/leads", headers=ann), "get", "/leads")
    assert [lead["name"] for lead in leads["leads"]] == ["Pat Plumber-Lead"]
    contacted = described(await console.post(f"/api/v1/leads/{lead_ids[PLUMBING]}/contacted", headers=ann),
                          "post", "/leads/{lead_id}/contacted")  # fmt: skip
    assert contacted["contacted_by"] == "ann@rosecity.example"
    assert described(await console.get("/api/v1/leads", headers=ann), "get", "/leads")["leads"] == []

    # B's data: by id it is as absent as what never was; in A's answers it never appears
    for path in (f"/api/v1/calls/{ids[DENTAL]}", f"/api/v1/calls/{uuid.uuid4()}"):
        described(await console.get(path, headers=ann), "get", "/calls/{call_id}", 404)
    all_leads = (await console.get("/api/v1/leads", params={"show": "all"}, headers=ann)).json()
    for answer in (calls, today, mine, quality, week, all_leads):
        assert ids[DENTAL] not in str(answer) and "Jordan Reyes" not in str(answer) and DENTAL not in str(answer)
        assert "Dee Dental-Lead" not in str(answer)
    contact_theirs = f"/api/v1/leads/{lead_ids[DENTAL]}/contacted"
    described(await console.post(contact_theirs, headers=ann), "post", "/leads/{lead_id}/contacted", 404)
    described(await console.get("/api/v1/quality", params={"business": DENTAL}, headers=ann), "get", "/quality", 404)
    marked = "/messages/{message_id}/called-back"
    described(await console.post(f"/api/v1/messages/{message_id}/called-back", headers=ann), "post", marked, 404)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT called_back_at FROM messages").fetchone() == (None,)
        assert conn.execute("SELECT contacted_at FROM leads WHERE business = %s", (DENTAL,)).fetchone() == (None,)

    # owner B marks his caller called back with his token: no CSRF token, the row changes in Postgres
    awaiting = described(await console.get("/api/v1/messages", headers=raj), "get", "/messages")
    assert [m["caller_name"] for m in awaiting["messages"]] == ["Jordan Reyes"]
    done = described(await console.post(f"/api/v1/messages/{message_id}/called-back", headers=raj), "post", marked)
    assert done["called_back_by"] == "raj@lakeview.example" and done["called_back_at"] is not None
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT u.email FROM messages m JOIN users u ON u.id = m.called_back_by").fetchone()
    assert row == ("raj@lakeview.example",)
    assert described(await console.get("/api/v1/messages", headers=raj), "get", "/messages")["messages"] == []
    described(await console.get(f"/api/v1/calls/{ids[PLUMBING]}", headers=raj), "get", "/calls/{call_id}", 404)
    # nor can he cancel or move A's booking (tests/web/test_api_appointments.py changes one's own)
    with psycopg.connect(db_url) as conn:
        dana = conn.execute("SELECT id FROM appointments").fetchone()[0]
    described(await console.post(f"/api/v1/appointments/{dana}/cancel", headers=raj),
              "post", "/appointments/{appointment_id}/cancel", 404)  # fmt: skip
    described(await console.post(f"/api/v1/appointments/{dana}/move", json={"start": "2030-01-07T10:00"},
                                 headers=raj), "post", "/appointments/{appointment_id}/move", 404)  # fmt: skip
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT status FROM appointments").fetchall() == [("booked",)]

    # refusals are described too
    described(await console.get("/api/v1/calls", params={"page": "0"}, headers=raj), "get", "/calls", 400)
    described(await console.get("/api/v1/today"), "get", "/today", 401)
    described_operations = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert described.seen == described_operations


async def test_a_revoked_token_is_refused_and_a_token_is_never_a_cookie(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str
) -> None:
    add_user("ann@rosecity.example", PLUMBING)
    script, laptop = _token(db_url, "ann@rosecity.example", "--name", "script"), _token(db_url, "ann@rosecity.example")
    assert script.startswith("rcpt_") and script != laptop
    with psycopg.connect(db_url) as conn:  # only hashes are kept
        assert conn.execute("SELECT count(*) FROM api_tokens WHERE token_hash::text LIKE %s", (f"%{script}%",)
                            ).fetchone() == (0,)  # fmt: skip
    assert (await console.get("/api/v1/calls", headers=_bearer(script))).status_code == 200
    with psycopg.connect(db_url) as conn:  # which tokens are still in use, before revoking one
        assert conn.execute("SELECT name, last_used_at IS NOT NULL FROM api_tokens ORDER BY name").fetchall() == [
            ("api", False), ("script", True)]  # fmt: skip
    again = receptionist("users", "token", "ann@rosecity.example", "--name", "script", db_url=db_url)
    assert again.returncode == 2 and "already has a token named 'script'" in again.stderr

    revoked = receptionist("users", "token", "ann@rosecity.example", "--revoke", "--name", "script", db_url=db_url)
    assert revoked.returncode == 0 and "revoked 1 token named 'script'" in revoked.stdout
    refused = await console.get("/api/v1/calls", headers=_bearer(script))
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert refused.json() == {"error": "this API token is unknown or revoked"}
    assert (await console.get("/api/v1/calls", headers=_bearer(laptop))).status_code == 200  # the other one stands
    receptionist("users", "token", "ann@rosecity.example", "--revoke", db_url=db_url)
    assert (await console.get("/api/v1/calls", headers=_bearer(laptop))).status_code == 401

    fresh = _token(db_url, "ann@rosecity.example", "--name", "script")  # a revoked name may be used again
    for cookie in ("receptionist_session", "token"):
        console.cookies.clear()
        console.cookies.set(cookie, fresh)
        assert (await console.get("/api/v1/calls")).status_code == 401, cookie
    console.cookies.clear()
    for header in (f"Basic {fresh}", "Bearer", fresh):
        assert (await console.get("/api/v1/calls", headers={"Authorization": header})).status_code == 401
    unknown = receptionist("users", "token", "nobody@x.example", db_url=db_url)
    assert unknown.returncode == 2 and "there is no user nobody@x.example" in unknown.stderr


async def test_a_browser_session_reads_the_api_but_changes_nothing_without_its_csrf_token(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str
) -> None:
    add_user("raj@lakeview.example", DENTAL)
    message_id = uuid.uuid4()
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO messages (id, business, caller_name, body, callback_requested)"
                     " VALUES (%s, %s, 'Jordan Reyes', 'call me', true)", (message_id, DENTAL))  # fmt: skip
    await log_in(console, "raj@lakeview.example")
    assert (await console.get("/api/v1/messages")).json()["messages"][0]["caller_name"] == "Jordan Reyes"
    mark = f"/api/v1/messages/{message_id}/called-back"
    forged = await console.post(mark)
    assert forged.status_code == 403 and "X-CSRF-Token" in forged.json()["error"]
    assert (await console.post(mark, headers={"X-CSRF-Token": "forged"})).status_code == 403
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT called_back_at FROM messages").fetchone() == (None,)
        csrf = conn.execute("SELECT csrf_token FROM web_sessions").fetchone()[0]
    assert (await console.post(mark, headers={"X-CSRF-Token": csrf})).json()["called_back_by"] == "raj@lakeview.example"


async def test_bad_input_is_a_json_400_or_404_never_a_500(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str
) -> None:
    add_user("ann@rosecity.example", PLUMBING)
    ann = _bearer(_token(db_url, "ann@rosecity.example"))
    t0 = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
    booked = await _insert_call(db_url, PLUMBING, at=t0, outcome="booked")
    flagged = await _insert_call(db_url, PLUMBING, at=t0 + timedelta(days=1), outcome="message", flags=["dead_air"])

    async def listed(**params: str) -> list[str]:
        got = await console.get("/api/v1/calls", params=params, headers=ann)
        assert got.status_code == 200, got.text
        return [c["id"] for c in got.json()["calls"]]

    assert await listed() == [flagged, booked]
    assert await listed(outcome="booked") == [booked]
    assert await listed(flag="dead_air") == [flagged]
    assert await listed(**{"from": "2026-11-21", "to": "2026-11-21"}) == [flagged]
    assert await listed(page="2") == []

    bad: list[tuple[str, dict[str, str], int]] = [
        ("/api/v1/calls", {"from": "2026-13-01"}, 400), ("/api/v1/calls", {"outcome": "won"}, 400),
        ("/api/v1/calls", {"flag": "x' OR 1=1"}, 400), ("/api/v1/calls", {"page": "99999999"}, 400),
        ("/api/v1/calls", {"page": "-1"}, 400), ("/api/v1/calls", {"caller": "abc"}, 400),
        ("/api/v1/calls", {"from": "2026-11-22", "to": "2026-11-21"}, 400),
        ("/api/v1/messages", {"show": "everything"}, 400), ("/api/v1/quality", {"since": "seven days"}, 400),
        ("/api/v1/quality", {"since": "7d", "from": "2026-11-01"}, 400),
        # absurd but well-formed: past what a date can hold, or a digit that is not a decimal one
        ("/api/v1/quality", {"since": "99999999w"}, 400), ("/api/v1/calls", {"page": "²"}, 400),
        ("/api/v1/quality", {"from": "9999-12-31", "to": "9999-12-31"}, 400),
        ("/api/v1/appointments", {"week": "someday"}, 400), ("/api/v1/appointments", {"week": "2999-01-01"}, 400),
        ("/api/v1/leads", {"show": "hot"}, 400),
        ("/api/v1/calls/not-a-uuid", {}, 404), ("/api/v1/nothing-here", {}, 404),
    ]  # fmt: skip
    for path, params, status in bad:
        refused = await console.get(path, params=params, headers=ann)
        assert refused.status_code == status and refused.json()["error"], (path, params)
    wrong_method = await console.delete(f"/api/v1/calls/{booked}", headers=ann)
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]
    not_a_message = await console.post("/api/v1/messages/not-a-uuid/called-back", headers=ann)
    assert not_a_message.status_code == 404 and not_a_message.json() == {"error": "There is no such message."}


async def test_one_address_trying_many_accounts_is_throttled_with_a_429(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str
) -> None:
    from agent.store.accounts import FAILED_SIGN_INS_PER_CLIENT

    add_user("ann@rosecity.example", PLUMBING)
    # a few guesses at each of many accounts: no account reaches its own lock
    for n in range(FAILED_SIGN_INS_PER_CLIENT):
        wrong = await log_in(console, f"user{n % 7}@rosecity.example", "guess guess guess")
        assert wrong.status_code == 401
    throttled = await log_in(console, "ann@rosecity.example")  # the right password, from that address
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    assert "too many failed sign-ins from your address" in throttled.text and "<form" in throttled.text
    assert "receptionist_session" not in throttled.headers.get("set-cookie", "")

    # ann's account is not locked: from another address she signs in
    app = console._transport.app  # type: ignore[attr-defined]
    elsewhere = httpx.ASGITransport(app=app, client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=elsewhere, base_url="http://console.test") as other:
        assert (await log_in(other, "ann@rosecity.example")).status_code == 303
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT locked_until FROM users").fetchone() == (None,)


@pytest.mark.parametrize("path", ["/api/v1/calls", "/api/v1/today", "/api/v1/messages", "/api/v1/quality",
                                  "/api/v1/appointments", "/api/v1/leads"])
async def test_the_api_needs_a_token_or_a_session(console: httpx.AsyncClient, path: str) -> None:
    refused = await console.get(path)
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in refused.json()["error"]
