"""Operator metrics: what a worker serves to Prometheus on METRICS_PORT, LiveKit's own series beside ours.

Each call runs in a job process of its own (LiveKit's forkserver), so every value goes through
prometheus_client's multiprocess mode: each process keeps its values in files of one directory, and
LiveKit's `/metrics` endpoint (its `prometheus_port`) merges them all at each scrape. What a call did
(outcome, timings, tokens, cost, flags) is taken from its call report when it ends, so the metrics and
the report never disagree. Metric names: README "Operator metrics".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, values

from agent.health import postgres_reachable

if TYPE_CHECKING:
    from agent.call import CallContext
    from agent.settings import Settings
    from agent.store.journal.writer import CallJournal

# --- per call, written by the job process that took the call --------------------------------------
# `business` is the brain's business name: a handful per worker, never the caller or the call
CALLS = Counter("receptionist_calls", "Calls ended, by outcome", ["business", "outcome"])
CALL_FLAGS = Counter("receptionist_call_flags", "Quality flags raised by call reports", ["business", "flag"])
TIME_TO_GREETING = Histogram(
    "receptionist_time_to_greeting_seconds", "Call start to the first audio of the greeting",
    ["business"], buckets=(0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0),
)  # fmt: skip
RESPONSE_GAP = Histogram(
    "receptionist_response_gap_seconds", "End of a caller turn to the agent's reply, per caller turn",
    ["business"], buckets=(0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
)  # fmt: skip
ALL_LINES_BUSY = Counter(
    "receptionist_all_lines_busy_calls",
    "Callers answered without the model because every worker was full: the busy line, then a voicemail "
    "if they left one",
    ["business"],
)  # fmt: skip
TOOL_LATENCY = Histogram(
    "receptionist_tool_latency_seconds", "Tool call latency, by tool", ["tool"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)  # fmt: skip
TOOL_ERRORS = Counter("receptionist_tool_errors", "Tool calls that failed, by tool", ["tool"])
VIOLATIONS = Counter(
    "receptionist_grounding_violations", "Agent claims the grounding guard contradicted", ["business", "kind"]
)
GUARD_HOLDS = Histogram(
    "receptionist_guard_hold_seconds",
    "Silence put before an agent sentence whose words were still arriving when it was due to play, "
    "so the grounding guard could read it first (0: they arrived in time)",
    buckets=(0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5),
)
TOKENS = Counter(
    "receptionist_realtime_tokens", "Realtime model tokens billed (the report's usage)", ["business", "kind"]
)
COST = Counter("receptionist_call_cost_usd", "What calls cost, in USD (the report's cost)", ["business", "part"])
REALTIME_ERRORS = Counter(
    "receptionist_realtime_errors", "Errors the Realtime model reported mid-call, by code", ["code"]
)
JOURNAL_PENDING = Gauge(
    "receptionist_journal_pending_events", "Call records waiting in memory for Postgres",
    multiprocess_mode="livesum",
)  # fmt: skip

# --- `receptionist notify inbound`, served on its --metrics-port ------------------------------------
INBOUND = CollectorRegistry()
FALLBACK_CALLS = Counter(
    "receptionist_fallback_calls",
    "Calls Twilio answered from TWILIO_VOICE_FALLBACK_URL because no worker could take them",
    ["business"], registry=INBOUND,
)  # fmt: skip
INBOUND_WAITING = Gauge(
    "receptionist_inbound_requests_waiting",
    "Twilio's webhook requests whose writes wait on disk (JOURNAL_SPILL_DIR) for Postgres", registry=INBOUND,
)  # fmt: skip

_TOKEN_KINDS = (
    "input_text_tokens", "input_audio_tokens", "cached_text_tokens", "cached_audio_tokens",
    "output_text_tokens", "output_audio_tokens",
)  # fmt: skip
_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+_(\d+)\.db$")
POSTGRES_PROBE_S = 10.0


def record_call(call: CallContext) -> None:
    """Count a finished call from its report (and its tool and violation records, the report's own
    sources). In-memory only when no metrics port is set: a console or scenario run pays microseconds."""
    report = call.report
    if report is None:
        return
    business = call.brain.business.name
    CALLS.labels(business, report["outcome"]).inc()
    if call.extras.get("all_lines_busy"):
        ALL_LINES_BUSY.labels(business).inc()
    for flag in report["flags"]:
        CALL_FLAGS.labels(business, flag["flag"]).inc()
    timing = report["timing"]
    if timing["to_greeting_s"] is not None:
        TIME_TO_GREETING.labels(business).observe(timing["to_greeting_s"])
    gaps = RESPONSE_GAP.labels(business)
    for gap in timing["response_gap_s"]["each"]:
        gaps.observe(gap)
    for entry in call.tool_log:
        TOOL_LATENCY.labels(entry.name).observe(entry.latency_ms / 1000)
        if entry.error is not None:
            TOOL_ERRORS.labels(entry.name).inc()
    for violation in call.violations:
        VIOLATIONS.labels(business, violation["kind"]).inc()
    for kind in _TOKEN_KINDS:
        if report["usage"][kind]:
            TOKENS.labels(business, kind.removesuffix("_tokens")).inc(report["usage"][kind])
    if report["cost"] is not None:
        COST.labels(business, "model").inc(report["cost"]["model"])
        COST.labels(business, "telephony").inc(report["cost"]["telephony"])


def realtime_error(code: str) -> None:
    REALTIME_ERRORS.labels(code).inc()


async def follow_journal(journal: CallJournal, every_s: float = 1.0) -> None:
    """Publish this process's journal backlog while its call lasts (cancel it at the call's end)."""
    try:
        while True:
            JOURNAL_PENDING.set(journal.stats()["pending"])
            await asyncio.sleep(every_s)
    finally:
        JOURNAL_PENDING.set(journal.stats()["pending"])


# --- per worker, written by the worker's main process ---------------------------------------------
class WorkerMetrics:
    """The worker-wide series (active calls, spill backlog, Postgres reachability), and the server
    options that make LiveKit serve every process's metrics on one port."""

    def __init__(self, settings: Settings) -> None:
        assert settings.metrics_port is not None
        self.settings = settings
        given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        self.directory = Path(given or tempfile.mkdtemp(prefix="receptionist-metrics-"))
        self._made_directory = not given
        # LiveKit sets this variable itself, but only once its server runs: job processes (started
        # later, from a forkserver that inherits it) would be fine, this process would not.
        # prometheus_client picks in-memory or file-backed values when it is imported, which
        # livekit.agents has done already, so the choice is made again here, before any value of
        # this process (LiveKit's labelled series included) exists.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(self.directory)
        values.ValueClass = values.get_value_class()

    def close(self) -> None:
        """Once the worker has stopped (its job processes with it): remove the directory it made."""
        if self._made_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def server_options(self) -> dict[str, Any]:
        return {
            "prometheus_port": self.settings.metrics_port,
            "prometheus_multiproc_dir": str(self.directory),
        }

    async def watch(self, active_calls: Callable[[], int], every_s: float = 1.0) -> None:
        """Until cancelled: refresh the worker-wide series, and forget the live gauges of job
        processes that have ended (a crashed one would otherwise count its last call forever).

        Start it once LiveKit's server has started: that start empties the directory, and a
        process's values live in files it opens once, so a value written earlier would be lost
        (with every other value sharing its file)."""

        def gauge(name: str, doc: str) -> Gauge:
            # one writer (this process); not registered: the scrape reads the files, not a registry
            return Gauge(name, doc, multiprocess_mode="max", registry=None)

        active = gauge("receptionist_active_calls", "Calls this worker is handling now")
        slots = gauge("receptionist_call_slots", "Calls this worker takes at most (WORKER_MAX_CALLS)")
        spill_bytes = gauge(
            "receptionist_journal_spill_bytes", "Call records on disk waiting for Postgres (bytes)"
        )
        spill_files = gauge("receptionist_journal_spill_files", "Spill files holding call records")
        set_aside = gauge(
            "receptionist_journal_set_aside_records",
            "Call records Postgres refused for their data, kept in JOURNAL_SPILL_DIR/rejected-*.jsonl",
        )
        postgres_up = gauge("receptionist_postgres_up", "1 if the worker reached Postgres at its last probe")
        slots.set(self.settings.worker_max_calls)
        loop = asyncio.get_running_loop()
        probed_at: float | None = None
        while True:
            active.set(active_calls())
            spilled = _spilled_sizes(self.settings.journal_spill_dir)
            spill_files.set(len(spilled))
            spill_bytes.set(sum(spilled))
            set_aside.set(_set_aside_records(self.settings.journal_spill_dir))
            self._forget_ended_processes()
            due = probed_at is None or loop.time() - probed_at >= POSTGRES_PROBE_S
            if self.settings.database_url and due:
                probed_at = loop.time()
                postgres_up.set(1 if await postgres_reachable(self.settings.database_url) else 0)
            await asyncio.sleep(every_s)

    def _forget_ended_processes(self) -> None:
        for name in os.listdir(self.directory):
            match = _LIVE_GAUGE_FILE.match(name)
            if match and not _alive(int(match.group(1))):
                multiprocess.mark_process_dead(int(match.group(1)), str(self.directory))


def _spilled_sizes(spill_dir: Path) -> list[int]:
    """Sizes of the non-empty spill files in spill_dir (live calls' journals included: a call that
    spills while Postgres is down is backlog too)."""
    from agent.store.journal.spill_file import spill_files

    sizes = []
    for path in spill_files(spill_dir) if spill_dir.is_dir() else []:
        with contextlib.suppress(FileNotFoundError):  # replayed and removed meanwhile
            size = path.stat().st_size
            if size:
                sizes.append(size)
    return sizes


def _set_aside_records(spill_dir: Path) -> int:
    """Lines of the journals' set-aside files (agent/store/journal/postgres_writes.py): each a record
    Postgres refused for its data, kept for an operator. Normally there are none, so no file to read."""
    from agent.store.journal.spill_file import set_aside_files

    count = 0
    for path in set_aside_files(spill_dir) if spill_dir.is_dir() else []:
        with contextlib.suppress(FileNotFoundError), open(path, "rb") as f:
            count += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 16), b""))
    return count


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
