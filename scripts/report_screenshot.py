"""Redraws docs/img/report.png, the README's picture of `receptionist report --html`: every call
scenario in tests/scenarios/ is run as `receptionist simulate` runs it (a fresh throwaway database
each, since their seeded bookings share slots and codes), what each call left is gathered into one
database, the report over those calls is written as one HTML file (`receptionist report --html`), and
Debian's headless chromium photographs it.

Run: `make report-screenshot` (or `.venv/bin/python scripts/report_screenshot.py [OUT.png]`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# each scenario in a database of its own, not one named by the environment
os.environ.pop("DATABASE_URL", None)

from simulator.postgres import PG_BIN  # noqa: E402 - after the checkout is importable
from simulator.runner import simulate  # noqa: E402
from simulator.scenario import load_scenario, scenario_files  # noqa: E402
from simulator.server import RealtimeSimulator  # noqa: E402
from simulator.session import ScenarioDatabases, scenario_stores  # noqa: E402

OUT = ROOT / "docs" / "img" / "report.png"
BUSINESS = "Rose City Plumbing"
WINDOW = ("--from", "2026-11-01", "--to", "2026-11-30")  # the scenarios' pinned clocks
# the page is 780 px wide plus margins; this tall, the picture ends below the three charts
WINDOW_SIZE = "860,1110"
# what a call leaves (agent/store/journal/) and the report reads; parents before children
CALL_TABLES = ("calls", "appointments", "transcript_turns", "tool_calls", "violations", "leads", "messages")


def _gather(source: str, target: str) -> None:
    """Copy one scenario database's call records into the report's database. A seeded booking in a
    slot (or with a code) another scenario already holds is left out: only its own database had it."""
    tables = [arg for t in CALL_TABLES for arg in ("-t", t)]
    dump = subprocess.run(
        [PG_BIN / "pg_dump", "--data-only", "--inserts", "--on-conflict-do-nothing", *tables, source],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    subprocess.run([PG_BIN / "psql", "-q", target], input=dump, check=True, capture_output=True, text=True)


async def _calls_into_one_database(workdir: Path) -> tuple[int, int]:
    """Every scenario's call, gathered; then the report's HTML and its picture. (passed, run)"""
    scenarios = [load_scenario(p) for p in scenario_files(ROOT / "tests" / "scenarios")]
    passed = 0
    async with ScenarioDatabases("auto") as databases, RealtimeSimulator() as sim:
        assert databases.server is not None
        target = databases.server.create_database("report", template=databases.TEMPLATE)
        for scenario in scenarios:
            dsn = databases.for_scenario()
            async with scenario_stores(dsn) as stores:
                report = await simulate(scenario, sim=sim, stores=stores)
            passed += report.passed
            print(f"{'PASS' if report.passed else 'FAIL'}  {scenario.name}", flush=True)
            assert dsn is not None
            await asyncio.to_thread(_gather, dsn, target)
        env = {**os.environ, "DATABASE_URL": target, "PYTHONPATH": str(ROOT)}
        receptionist = Path(sys.executable).with_name("receptionist")
        await asyncio.to_thread(
            subprocess.run,
            [receptionist, "report", "--business", BUSINESS, *WINDOW, "--html", workdir / "report.html"],
            cwd=ROOT, env=env, check=True,
        )  # fmt: skip
    return passed, len(scenarios)


def main(out: Path = OUT) -> int:
    chromium = shutil.which("chromium")
    if chromium is None:
        print("report-screenshot: needs Debian's chromium (apt-get install chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="report-") as tmp:
        passed, run = asyncio.run(_calls_into_one_database(Path(tmp)))
        print(f"{passed} of {run} scenarios passed")
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--window-size={WINDOW_SIZE}", f"--screenshot={out}", (Path(tmp) / "report.html").as_uri()],
            check=True, capture_output=True,
        )  # fmt: skip
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
