"""Signing in to the console: argon2 hashes in Postgres, sessions, lockout after five wrong passwords,
CSRF on every form, logout."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg

from tests.web.conftest import PASSWORD, RECEPTIONIST, ROOT, csrf_of, log_in, receptionist


async def test_a_user_added_on_the_command_line_logs_in_and_out(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str
) -> None:
    add_user("ann@rosecity.example", "rose city plumbing")
    with psycopg.connect(db_url) as conn:
        stored = conn.execute(
            "SELECT u.password_hash, u.role, b.business FROM users u JOIN user_businesses b ON b.user_id = u.id"
        ).fetchall()
    # the brain's spelling of the business, and a hash, never the password
    assert stored[0][1:] == ("owner", "Rose City Plumbing") and stored[0][0].startswith("$argon2id$")
    assert PASSWORD not in stored[0][0]

    assert (await console.get("/")).headers["location"] == "/login?next=/"
    signed = await log_in(console, "ann@rosecity.example")
    assert signed.status_code == 303 and signed.headers["location"] == "/"
    cookie = signed.headers["set-cookie"]
    assert "receptionist_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # no TLS here; WEB_SECURE_COOKIES sets it
    today = await console.get("/")
    assert today.status_code == 200 and "ann@rosecity.example" in today.text

    out = await console.post("/logout", data={"csrf_token": csrf_of(today.text)})
    assert out.status_code == 303
    assert (await console.get("/")).status_code == 303  # back to the login page
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM web_sessions").fetchone() == (0,)


async def test_five_wrong_passwords_lock_the_account(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str
) -> None:
    add_user("bob@rosecity.example", "Rose City Plumbing")
    for _ in range(4):
        wrong = await log_in(console, "bob@rosecity.example", "not the password")
        assert wrong.status_code == 401 and "wrong email or password" in wrong.text
    assert (await log_in(console, "bob@rosecity.example", "still not it")).status_code == 401
    locked = await log_in(console, "bob@rosecity.example")  # the right password, too late
    assert locked.status_code == 403 and "locked" in locked.text
    assert "receptionist_session" not in locked.headers.get("set-cookie", "")
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT locked_until > now() FROM users").fetchone() == (True,)
        assert conn.execute("SELECT count(*) FILTER (WHERE NOT succeeded), count(*) FROM login_attempts"
                            ).fetchone() == (6, 6)  # fmt: skip


async def test_four_wrong_passwords_then_the_right_one_signs_in(
    console: httpx.AsyncClient, add_user: Callable[..., str]
) -> None:
    add_user("cat@rosecity.example", "Rose City Plumbing")
    for _ in range(4):
        await log_in(console, "cat@rosecity.example", "nope nope nope")
    assert (await log_in(console, "cat@rosecity.example")).status_code == 303


async def test_a_post_without_its_csrf_token_is_refused(
    console: httpx.AsyncClient, add_user: Callable[..., str]
) -> None:
    add_user("dan@rosecity.example", "Rose City Plumbing")
    await console.get("/login")
    no_token = await console.post("/login", data={"email": "dan@rosecity.example", "password": PASSWORD})
    assert no_token.status_code == 403 and "receptionist_session" not in no_token.headers.get("set-cookie", "")
    await log_in(console, "dan@rosecity.example")
    assert (await console.post("/logout")).status_code == 403
    assert (await console.post("/logout", data={"csrf_token": "forged"})).status_code == 403
    assert (await console.get("/")).status_code == 200  # still signed in: the forged logout did nothing


def test_users_add_refuses_an_unknown_business_and_a_short_password(db_url: str) -> None:
    unknown = receptionist("users", "add", "eve@x.example", "--business", "Nope Co", "--password-stdin",
                           db_url=db_url, stdin=PASSWORD + "\n")  # fmt: skip
    assert unknown.returncode == 2 and "no business named 'Nope Co'" in unknown.stderr
    short = receptionist("users", "add", "eve@x.example", "--business", "Rose City Plumbing",
                         "--password-stdin", db_url=db_url, stdin="short\n")  # fmt: skip
    assert short.returncode == 2 and "at least 10 characters" in short.stderr
    again = [receptionist("users", "add", "eve@x.example", "--business", "Rose City Plumbing",
                          "--password-stdin", db_url=db_url, stdin=PASSWORD + "\n") for _ in range(2)]  # fmt: skip
    assert again[0].returncode == 0 and again[1].returncode == 2 and "already exists" in again[1].stderr


def test_web_without_a_database_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DATABASE_URL", "BRAIN_PATH"))}
    ran = subprocess.run([RECEPTIONIST, "web", "--port", "0"], cwd=tmp_path, env=env | {"PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert ran.returncode == 2 and ran.stderr == "receptionist: missing required setting DATABASE_URL\n"
