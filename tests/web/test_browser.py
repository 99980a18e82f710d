"""The console in a real browser (Debian's headless Chromium driven by Selenium) against a real
`receptionist web` on loopback: log in, read a scenario's call, mark a message called back through the
vendored htmx. A screenshot of each page is saved outside the repository (CONSOLE_SCREENSHOTS, or a
directory under the system's temp dir, printed by the test)."""

from __future__ import annotations

import asyncio
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
from tests.web.test_today_events import end_call

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


def test_an_owner_moves_cancels_marks_a_lead_and_reads_the_brain_in_a_browser(
    served: str, browser: WebDriver, add_user: Callable[..., str], db_url: str
) -> None:
    from tests.web.test_owner_pages import at, open_weekday

    day = open_weekday()
    dana, sam, lead = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(db_url, autocommit=True) as conn:
        booked = ((dana, "Dana Whitfield", "K7P-4M2", 9), (sam, "Sam Ortiz", "R3D-9TX", 13))
        for appointment, name, code, hour in booked:
            conn.execute(
                "INSERT INTO appointments (id, business, resource, service, customer_name, customer_phone, during,"
                " confirmation_code) VALUES (%s, %s, 'default', 'Drain cleaning', %s, '+15035550142',"
                " tstzrange(%s, %s, '[)'), %s)",
                (appointment, PLUMBING, name, at(day, hour), at(day, hour) + timedelta(minutes=90), code),
            )  # fmt: skip
        conn.execute("INSERT INTO leads (id, business, name, phone, need, urgency, score, answers) VALUES"
                     " (%s, %s, 'Maria Gomez', '+15035550150', 'A new 50 gallon water heater', 'soon', 95, %s)",
                     (lead, PLUMBING, Jsonb({"job_type": "install", "homeowner": "yes"})))  # fmt: skip
    add_user("ann@rosecity.example", PLUMBING)
    _log_in(browser, served, "ann@rosecity.example")

    browser.find_element(By.LINK_TEXT, "Appointments").click()
    WebDriverWait(browser, 30).until(ready.title_contains("Appointments"))
    browser.get(f"{served}/appointments?week={day.isoformat()}")
    _shot(browser, "appointments")
    # a move onto Sam's hour: the page says why, and nothing moves
    field = browser.find_element(By.CSS_SELECTOR, f"#appointment-{dana} input[name=start]")
    browser.execute_script("arguments[0].value = arguments[1]", field, f"{day.isoformat()}T13:00")
    browser.find_element(By.CSS_SELECTOR, f"#appointment-{dana} form.move button").click()
    WebDriverWait(browser, 30).until(ready.presence_of_element_located((By.CSS_SELECTOR, "p.error")))
    assert "is taken by another appointment" in browser.find_element(By.CSS_SELECTOR, "p.error").text
    _shot(browser, "appointments-move-refused")
    browser.find_element(By.CSS_SELECTOR, f"#appointment-{sam} form.inline button").click()
    browser.switch_to.alert.accept()
    cancelled = (By.CSS_SELECTOR, f"#appointment-{sam}.cancelled")
    WebDriverWait(browser, 30).until(ready.presence_of_element_located(cancelled))
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT customer_name, status FROM appointments ORDER BY customer_name").fetchall() == [
            ("Dana Whitfield", "booked"), ("Sam Ortiz", "cancelled")]  # fmt: skip

    browser.find_element(By.LINK_TEXT, "Leads").click()
    WebDriverWait(browser, 30).until(ready.title_contains("Leads"))
    _shot(browser, "leads")
    browser.find_element(By.XPATH, "//button[text()='Mark contacted']").click()
    WebDriverWait(browser, 30).until(ready.text_to_be_present_in_element((By.ID, f"lead-{lead}"), "Contacted"))
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT u.email FROM leads l JOIN users u ON u.id = l.contacted_by").fetchall() == [
            ("ann@rosecity.example",)]  # fmt: skip

    browser.find_element(By.LINK_TEXT, "Brain").click()
    WebDriverWait(browser, 30).until(ready.title_contains("Brain"))
    assert "Valid: 5 services" in browser.find_element(By.TAG_NAME, "main").text
    _shot(browser, "brain")
    print(f"screenshots: {SHOTS}")


def test_the_today_page_shows_a_call_that_just_ended_without_a_reload(
    served: str, browser: WebDriver, add_user: Callable[..., str], db_url: str, tmp_path: Path
) -> None:
    add_user("ann@rosecity.example", PLUMBING)
    _log_in(browser, served, "ann@rosecity.example")
    browser.execute_script("window.openedOnce = true")  # gone if the page were loaded again
    # while its event stream is open the page does not poll: what shows up next came by the stream
    WebDriverWait(browser, 30).until(lambda b: b.execute_script(
        "return window.todayEvents !== undefined && todayEvents.readyState === EventSource.OPEN"))
    assert "No calls." in browser.find_element(By.ID, "today").text

    asyncio.run(end_call(db_url, tmp_path / "spill", DENTAL, "+15035550177"))  # another owner's call
    asyncio.run(end_call(db_url, tmp_path / "spill", PLUMBING, "+15035550142"))
    WebDriverWait(browser, 30).until(ready.text_to_be_present_in_element((By.ID, "today"), "+15035550142"))
    today = browser.find_element(By.ID, "today").text
    assert "booked" in today and "+15035550177" not in today
    assert browser.execute_script("return window.openedOnce === true")
    _shot(browser, "today-live")
