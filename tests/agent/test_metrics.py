"""The worker-wide operator metrics when things go wrong: Postgres down, call records spilled to disk, a
job process gone with records in its backlog. What the Postgres and spill alerts, and an autoscaler
reading active calls, rely on (the happy path runs end to end in tests/phone/test_operator_metrics.py)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, multiprocess, values

from agent.metrics import WorkerMetrics
from agent.settings import load_settings
from tests.fixtures.stack import ROOT, free_port


def scrape(directory: Path) -> dict[str, float]:
    """What the worker's /metrics would serve: every process's files, merged."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, str(directory))
    return {
        sample.name: sample.value for family in registry.collect() for sample in family.samples
    }


async def test_worker_series_show_postgres_down_spilled_records_and_forget_ended_job_processes(
    tmp_path: Path, monkeypatch
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)  # WorkerMetrics switches it; undone after
    spill = tmp_path / "spill"
    spill.mkdir()
    (spill / "journal-4242-0badcafe.jsonl").write_bytes(b'{"n": 1}\n' * 3)
    (spill / "journal-4243-00000000.jsonl").write_bytes(b"")  # a live call's journal, nothing spilled
    (spill / "rejected-journal-4241-feedface.jsonl").write_bytes(b'{"n": 9}\n' * 2)  # refused for their data
    settings = load_settings(
        openai_api_key="test",
        metrics_port=9,
        database_url=f"postgresql://nobody@127.0.0.1:{free_port()}/gone",
        journal_spill_dir=spill,
    )
    # a job process that ended with 7 call records still waiting in its journal
    job = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from agent.metrics import JOURNAL_PENDING; JOURNAL_PENDING.set(7)",
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert await asyncio.wait_for(job.wait(), 60) == 0
    assert scrape(directory)["receptionist_journal_pending_events"] == 7

    worker = WorkerMetrics(settings)
    rounds = 0
    first_round_done = asyncio.Event()

    def active_calls() -> int:
        nonlocal rounds
        rounds += 1
        if rounds == 2:  # each round starts here: the first one (Postgres probe included) is over
            first_round_done.set()
        return 2

    watch = asyncio.create_task(worker.watch(active_calls, every_s=0.01))
    try:
        await asyncio.wait_for(first_round_done.wait(), 30)
    finally:
        watch.cancel()
    seen = scrape(directory)
    assert seen["receptionist_postgres_up"] == 0
    assert seen["receptionist_journal_spill_bytes"] == len(b'{"n": 1}\n' * 3)
    assert seen["receptionist_journal_spill_files"] == 1
    assert seen["receptionist_journal_set_aside_records"] == 2
    assert seen["receptionist_active_calls"] == 2
    assert seen["receptionist_call_slots"] == settings.worker_max_calls
    # the ended process's backlog no longer counts
    assert "receptionist_journal_pending_events" not in seen
