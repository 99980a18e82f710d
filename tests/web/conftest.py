"""The console on the test's fresh database, reached through httpx's ASGI transport, and users added
with `receptionist users add` as an operator would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from web.app import ConsoleConfig, create_app

ROOT = Path(__file__).resolve().parents[2]
RECEPTIONIST = str(Path(sys.executable).parent / "receptionist")
PASSWORD = "correct horse battery"


def receptionist(*args: str, db_url: str, stdin: str = "", cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DATABASE_URL", "BRAIN_PATH"))}
    env |= {"DATABASE_URL": db_url, "PYTHONPATH": str(ROOT), "BRAIN_PATH": str(ROOT / "brains")}
    return subprocess.run([RECEPTIONIST, *args], input=stdin, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip


@pytest.fixture
def add_user(db_url: str) -> Callable[..., str]:
    def add(email: str, *businesses: str, role: str = "owner", password: str = PASSWORD) -> str:
        flags = [f for b in businesses for f in ("--business", b)]
        done = receptionist("users", "add", email, *flags, "--role", role, "--password-stdin",
                            db_url=db_url, stdin=password + "\n")  # fmt: skip
        assert done.returncode == 0, done.stderr
        return email

    return add


@pytest.fixture
def console_config(db_url: str) -> ConsoleConfig:
    """The console's settings; a test module that needs the brain files overrides this."""
    return ConsoleConfig(db_url)


@pytest.fixture
async def console(console_config: ConsoleConfig) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client of the console (keeps cookies, does not follow redirects by itself)."""
    app = create_app(console_config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            yield client


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "the page has no form with a CSRF token"
    return m.group(1)


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    form = await client.get("/login")
    return await client.post("/login", data={"csrf_token": csrf_of(form.text), "email": email,
                                             "password": password, "next": "/"})  # fmt: skip
