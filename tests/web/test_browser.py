"""The console in a real browser (Debian's headless Chromium driven by Selenium) against a real
`receptionist web` on loopback: log in, read a scenario's call, mark a message called back through the
vendored htmx. A screenshot of each page is saved outside the repository (CONSOLE_SCREENSHOTS, or a
directory under the system's temp dir, printed by the test)."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from tests.web.conftest import PASSWORD, RECEPTIONIST, ROOT
from tests.web.test_console import DENTAL, PLUMBING, _simulate

SHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS") or Path(tempfile.gettempdir()) / "receptionist-console")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(db_url: str) -> Iterator[str]:
    """`receptionist web` on a free loopback port, once uvicorn says it is serving."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DATABASE_URL", "BRAIN_PATH"))}
    env |= {"DATABASE_URL": db_url, "PYTHONPATH": str(ROOT), "BRAIN_PATH": str(ROOT / "brains")}
    proc = subprocess.Popen([RECEPTIONIST, "--log-level", "INFO", "web", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # uvicorn logs this line once the socket is listening
            seen.append(line)
            if "Application startup complete" in line:
                break
        else:
            pytest.fail("receptionist web exited: " + "".join(seen[-20:]))
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1400"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        yield driver
    finally:
        driver.quit()


def _shot(browser: WebDriver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / f"{name}.png"))


def _log_in(browser: WebDriver, base: str, email: str) -> None:
    browser.delete_all_cookies()
    browser.get(f"{base}/login")
    browser.find_element(By.NAME, "email").send_keys(email)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
    WebDriverWait(browser, 30).until(ready.title_contains("Today"))


def test_an_owner_works_through_the_console_in_a_browser(
    served: str, browser: WebDriver, add_user: Callable[..., str], db_url: str, tmp_path: Path
) -> None:
    _simulate(db_url, tmp_path, "book-drain-cleaning", "take-message")
    with psycopg.connect(db_url, autocommit=True) as conn:
        ids = dict(conn.execute("SELECT business, id::text FROM calls").fetchall())
        # a call that ended a minute ago, so Today has something to show
        now = datetime.now(UTC)
        conn.execute(
            "INSERT INTO calls (id, business, caller_number, started_at, ended_at, outcome, summary)"
            " VALUES (%s, %s, '+15035550142', %s, %s, 'abandoned', %s)",
            (uuid.uuid4(), PLUMBING, now - timedelta(minutes=2), now - timedelta(minutes=1),
             Jsonb({"version": 1, "flags": [{"flag": "hung_up_during_greeting", "turns": []}]})),
        )  # fmt: skip
    add_user("ann@rosecity.example", PLUMBING)
    add_user("raj@lakeview.example", DENTAL)

    browser.get(served)  # sent to log in first
    assert browser.current_url.startswith(f"{served}/login")
    _shot(browser, "login")
    _log_in(browser, served, "ann@rosecity.example")
    assert "hung_up_during_greeting" in browser.page_source
    _shot(browser, "today")

    browser.find_element(By.LINK_TEXT, "Calls").click()
    WebDriverWait(browser, 30).until(ready.title_contains("Calls"))
    _shot(browser, "calls")
    browser.find_element(By.CSS_SELECTOR, f"a[href='/calls/{ids[PLUMBING]}']").click()
    WebDriverWait(browser, 30).until(ready.presence_of_element_located((By.CSS_SELECTOR, "table.transcript")))
    transcript = browser.find_element(By.CSS_SELECTOR, "table.transcript").text
    assert "my kitchen sink is clogged" in transcript
    _shot(browser, "call")

    browser.get(f"{served}/calls/{ids[DENTAL]}")  # another owner's call, by URL
    assert "404" in browser.title and "Jordan Reyes" not in browser.page_source
    browser.get(f"{served}/quality?from=2026-11-01&to=2026-11-30")
    assert browser.find_elements(By.CSS_SELECTOR, "svg")
    _shot(browser, "quality")

    _log_in(browser, served, "raj@lakeview.example")
    browser.find_element(By.LINK_TEXT, "Messages").click()
    WebDriverWait(browser, 30).until(ready.title_contains("Messages"))
    _shot(browser, "messages")
    browser.find_element(By.XPATH, "//button[text()='Mark called back']").click()
    # htmx replaces the row in place: the page is not reloaded
    WebDriverWait(browser, 30).until(ready.text_to_be_present_in_element((By.TAG_NAME, "main"), "Called back"))
    assert "raj@lakeview.example" in browser.find_element(By.TAG_NAME, "main").text
    _shot(browser, "messages-called-back")
    with psycopg.connect(db_url) as conn:
        assert conn.execute(
            "SELECT u.email FROM messages m JOIN users u ON u.id = m.called_back_by WHERE m.called_back_at IS NOT NULL"
        ).fetchall() == [("raj@lakeview.example",)]
    print(f"screenshots: {SHOTS}")
