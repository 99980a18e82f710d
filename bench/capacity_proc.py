"""Capacity with the worker's real job executor: every call in a job process of its own, made by
LiveKit's ProcPool from a forkserver preloaded as the worker preloads it and warmed by our `prewarm`.
Prints the most concurrent calls whose response-gap p99 stays within 100 ms of the single-call figure,
CPU seconds per call-minute and memory per call (RSS, and USS/PSS since forked processes share pages).

`python -m bench.capacity_proc [--quick]`; writes bench/results/capacity_proc[-quick].json and .png.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import multiprocessing as mp
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import psutil
from livekit.agents import JobContext, JobExecutorType, Plugin
from livekit.agents.ipc.job_executor import JobExecutor
from livekit.agents.ipc.proc_pool import ProcPool
from livekit.agents.job import JobAcceptArguments, RunningJobInfo
from livekit.protocol import agent as agent_proto
from livekit.protocol import models

from agent.worker import job_process_environment, prewarm
from bench import calls, report
from bench.audio import PLAIN_LINES, speech
from bench.calls import (
    MODEL_DELAY_MS,
    OURS,
    ROOT,
    BenchCall,
    SimulatorThread,
    all_model_lines,
    quiet_logs,
    script,
    stats,
    warm_model_voice,
)
from bench.response_gap import caller

P99_SLACK_MS = 100.0
T = TypeVar("T")


# ---- the control line between the parent (simulator) and a call's job process ----------------------
# The simulator is driven through Python calls (add_script, queue_transcript); a job process reaches it
# through this line instead, and reports its gaps back on it. Newline-delimited JSON on a unix socket.

class CallLine:
    """A job process's end of the control line."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, path: str) -> CallLine:
        reader, writer = await asyncio.open_unix_connection(path)
        return cls(reader, writer)

    def send(self, msg: dict[str, Any]) -> None:
        # buffered, never blocks the call's loop; the stream keeps the order, which is all that matters:
        # a transcript goes out at the caller's first syllable and is read at the commit, seconds later
        self.writer.write(json.dumps(msg).encode() + b"\n")

    async def expect(self, op: str) -> dict[str, Any]:
        line = await self.reader.readline()
        if not line:
            raise ConnectionError(f"control line closed while waiting for {op!r}")
        msg = json.loads(line)
        if msg.get("op") != op:
            raise RuntimeError(f"control line: expected {op!r}, got {msg}")
        return msg

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class _RemoteSimulator:
    """The part of RealtimeSimulator a BenchCall touches, over the control line."""

    def __init__(self, line: CallLine, url_template: str) -> None:
        self.line, self.url_template = line, url_template

    def add_script(self, key: str, steps: list[dict[str, Any]]) -> None:
        pass  # registered (and acknowledged) before the call starts: see _one_call

    def url_for(self, key: str) -> str:
        return self.url_template.replace("{key}", key)

    def queue_transcript(self, text: str, key: str, parts: list[tuple[str, float]] | None = None) -> None:
        self.line.send({"op": "transcript", "key": key, "text": text, "parts": parts})


class SimulatorLink:
    """Stands in for SimulatorThread inside a job process: the simulator runs in the parent."""

    def __init__(self, line: CallLine, url_template: str) -> None:
        self.sim = _RemoteSimulator(line, url_template)


async def loop_lag(into: list[float], every: float = 0.1) -> None:
    """How late a 100 ms timer fires on the call's loop. (ResourceMeter's 10 ms probe is one per process
    of calls; here it would be one per call, ~100 wake-ups a second added to every job process.)"""
    while True:
        t = time.monotonic()
        await asyncio.sleep(every)
        into.append((time.monotonic() - t - every) * 1000)


class CallDesk:
    """The parent's end: registers scripts and transcripts with the simulator (on the simulator's own
    loop, so no locking), counts calls ready, starts them together and collects their results."""

    def __init__(self, simt: SimulatorThread, path: str) -> None:
        self.simt, self.path = simt, path
        self.writers: dict[str, asyncio.StreamWriter] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self._changed = asyncio.Event()
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:  # on the simulator loop
        self._changed = asyncio.Event()
        self._server = await asyncio.start_unix_server(self._serve, self.path)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in self.writers.values():
                w.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sim = self.simt.sim
        while line := await reader.readline():
            msg = json.loads(line)
            op, key = msg["op"], msg["key"]
            if op == "script":
                sim.add_script(key, msg["steps"])
                writer.write(b'{"op": "scripted"}\n')
            elif op == "transcript":
                parts = msg.get("parts")  # JSON made the (words, seconds) pairs lists
                sim.queue_transcript(msg["text"], key=key, parts=[tuple(p) for p in parts] if parts else None)
            elif op == "ready":
                self.writers[key] = writer
            elif op == "result":
                self.results[key] = msg
            self._changed.set()

    async def wait(self, until: Callable[[], bool], within: float) -> None:
        deadline = time.monotonic() + within
        while not until():
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline and not until():
                raise TimeoutError("calls did not report in time")

    async def broadcast(self, op: str) -> None:
        for w in self.writers.values():
            w.write(json.dumps({"op": op}).encode() + b"\n")
        await asyncio.gather(*(w.drain() for w in self.writers.values()), return_exceptions=True)

    def reset(self) -> None:
        self.writers.clear()
        self.results.clear()


# ---- inside a job process -------------------------------------------------------------------------

async def call_job(ctx: JobContext) -> None:
    """The job entrypoint: one receptionist call (BenchCall, the OURS flavour) driven by a scripted caller,
    its response gaps sent back to the parent. The plan comes in the job's metadata, as a dispatch would."""
    plan = json.loads(ctx.job.metadata)
    line = await CallLine.open(plan["desk"])
    try:
        await _one_call(ctx, plan, line)
    except Exception as e:  # noqa: BLE001 - a failed call is a result, not a hung benchmark
        line.send({"op": "result", "key": plan["key"], "error": repr(e)})
        with contextlib.suppress(Exception):
            await line.writer.drain()
    finally:
        line.close()
        ctx.shutdown("call finished")


async def _one_call(ctx: JobContext, plan: dict[str, Any], line: CallLine) -> None:
    settings = ctx.proc.userdata["settings"]
    silence = OURS.settings.vad_min_silence_duration
    if settings.vad_min_silence_duration != silence:
        raise RuntimeError(f"prewarm's VAD min silence {settings.vad_min_silence_duration} != bench's {silence}")
    # BenchCall asks bench.calls for the VAD; hand it the one our prewarm loaded, as the worker's entrypoint does
    calls._VADS[silence] = ctx.proc.userdata["vad"]
    key, turns = plan["key"], plan["turns"]
    call = BenchCall(SimulatorLink(line, plan["url"]), OURS, script(turns + 4))  # type: ignore[arg-type]
    call.key = key
    for text in PLAIN_LINES:
        speech(text, "en-gb")  # the caller's lines, rendered (espeak) before the call is answered
    line.send({"op": "script", "key": key, "steps": call.steps})
    await line.expect("scripted")
    await call.start()
    rng = random.Random(plan["seed"])
    line.send({"op": "ready", "key": key})
    await line.expect("go")
    lags: list[float] = []
    probe = asyncio.create_task(loop_lag(lags))
    try:
        await asyncio.sleep(rng.uniform(0, 2.0))
        await caller(call, turns, random.Random(rng.random()))
    finally:
        probe.cancel()
    gaps = [round(t.gap_ms - MODEL_DELAY_MS, 2) for t in call.turns if t.gap_ms is not None]
    line.send({"op": "result", "key": key, "gaps": gaps, "unanswered": len(call.turns) - len(gaps),
               "loop_lag_ms": stats(lags)})
    await line.expect("hangup")  # memory is read while every call is still up
    await call.close()


# ---- the parent: the worker's process pool, one level at a time -------------------------------------

def _worker_mp_context() -> Any:
    """The start method and preloads AgentServer uses on Linux (livekit/agents/worker.py, "preloading
    plugins"): the plugins and the framework's warm-up run once in a forkserver, and every job process
    forks from it and shares those pages copy-on-write."""
    ctx = mp.get_context("forkserver")
    packages = list(dict.fromkeys(p.package for p in Plugin.registered_plugins))
    ctx.set_forkserver_preload(packages + ["livekit.agents.ipc._preload", "livekit.agents.ipc._preload_freeze"])
    return ctx


def _prewarm_environment() -> None:
    """What our prewarm's load_settings() reads: the bench's flavour, never a developer's .env values."""
    os.environ["OPENAI_API_KEY"] = "sim"
    os.environ["BRAIN_PATH"] = str(ROOT / "brains")
    os.environ["VAD_MIN_SILENCE_DURATION"] = str(OURS.settings.vad_min_silence_duration)
    job_process_environment()  # as agent.worker.main does before the pool starts


def _job_entrypoint() -> Callable[[JobContext], Awaitable[None]]:
    # pickled by reference into the job processes: name it by its importable module even when this file
    # runs as __main__ (python -m)
    return importlib.import_module("bench.capacity_proc").call_job  # type: ignore[no-any-return]


def _busy_cpu_s() -> float:
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def _cpu_s(p: psutil.Process) -> float:
    with contextlib.suppress(psutil.Error):
        t = p.cpu_times()
        return t.user + t.system + t.children_user + t.children_system
    return 0.0


def _main_thread_s(p: psutil.Process) -> float:
    with contextlib.suppress(psutil.Error):
        t = next((t for t in p.threads() if t.id == p.pid), None)
        return t.user_time + t.system_time if t else 0.0
    return 0.0


def _switches(p: psutil.Process) -> int:
    with contextlib.suppress(psutil.Error):
        return p.num_ctx_switches().voluntary
    return 0


def _tree_cpu_s() -> float:
    me = psutil.Process()
    return _cpu_s(me) + sum(_cpu_s(p) for p in me.children(recursive=True))


async def quiet_machine(others_below: float = 0.25, within: float = 60.0) -> float:
    """Other programs share these 2 cores (other engineers' benchmarks and profilers): wait until the rest
    of the machine uses less than `others_below` of a core over 2 s, or `within` seconds; returns the
    last reading, which goes into the result."""
    deadline = time.monotonic() + within
    while True:
        busy0, ours0, t0 = _busy_cpu_s(), _tree_cpu_s(), time.monotonic()
        await asyncio.sleep(2.0)
        others = max(0.0, (_busy_cpu_s() - busy0) - (_tree_cpu_s() - ours0)) / (time.monotonic() - t0)
        if others < others_below or time.monotonic() >= deadline:
            return round(others, 3)


def _memory(procs: list[psutil.Process]) -> dict[str, float]:
    """Resident memory of `procs`, totals in MB: RSS counts pages shared with the forkserver in every
    process; USS is what each owns alone (freed when it exits); PSS shares the shared pages out."""
    rss = uss = pss = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            m = p.memory_full_info()
            rss, uss, pss = rss + m.rss, uss + m.uss, pss + getattr(m, "pss", 0)
    mb = 2**20
    return {"rss_mb": round(rss / mb, 1), "uss_mb": round(uss / mb, 1), "pss_mb": round(pss / mb, 1)}


def _per(total: dict[str, float], n: int) -> dict[str, float]:
    return {k: round(v / n, 1) for k, v in total.items()} if n else {}


class Harness:
    """The simulator on its thread, the control desk on the simulator's loop, and the forkserver."""

    def __init__(self) -> None:
        self.simt = SimulatorThread()
        self.desk_path = os.path.join(tempfile.mkdtemp(prefix="bench-desk-"), "desk.sock")
        self.desk = CallDesk(self.simt, self.desk_path)
        self.mp_ctx = _worker_mp_context()

    def on_sim(self, coro: Coroutine[Any, Any, T]) -> Awaitable[T]:
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.simt.loop))

    async def start(self) -> None:
        self.simt.start()
        await self.on_sim(self.desk.start())
        warm_model_voice(all_model_lines())

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.on_sim(self.desk.stop())
        self.simt.stop()
        with contextlib.suppress(OSError):
            os.unlink(self.desk_path)

    def forkserver(self) -> psutil.Process | None:
        from multiprocessing import forkserver

        pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
        return psutil.Process(pid) if pid else None


async def run_level(h: Harness, n: int, turns: int, *, seed: int = 1, stagger_s: float = 3.0) -> dict[str, Any]:
    """`n` concurrent calls, each in a job process of LiveKit's ProcPool warmed by our prewarm."""
    rng = random.Random(seed)
    h.desk.reset()
    warm_t0 = time.monotonic()
    pool = ProcPool(
        initialize_process_fnc=prewarm,
        job_entrypoint_fnc=_job_entrypoint(),
        session_end_fnc=None,
        simulation_end_fnc=None,
        num_idle_processes=n,  # all warm before the first call, as a worker's idle processes would be
        initialize_timeout=60.0,
        close_timeout=10.0,
        session_end_timeout=10.0,
        inference_executor=None,  # our worker registers no inference runner (no turn detector)
        job_executor_type=JobExecutorType.PROCESS,
        mp_ctx=h.mp_ctx,
        memory_warn_mb=1000,
        memory_limit_mb=0,
        http_proxy=None,
        loop=asyncio.get_running_loop(),
    )
    ready: list[JobExecutor] = []
    pool.on("process_ready", ready.append)
    await pool.start()
    while len(ready) < n:
        await asyncio.sleep(0.1)
    pool.set_target_idle_processes(0)  # no replacements spawned while the calls are measured
    warm_s = time.monotonic() - warm_t0
    idle = [psutil.Process(p.pid) for p in ready if p.pid]
    idle_mem = _per(_memory(idle), len(idle))
    quiet_t0 = time.monotonic()
    others_before = await quiet_machine()
    waited = time.monotonic() - quiet_t0
    url = h.simt.sim.url_for("{key}")
    keys = [uuid.uuid4().hex[:12] for _ in range(n)]

    async def answer(key: str, delay: float) -> None:
        await asyncio.sleep(delay)
        plan = {"desk": h.desk_path, "url": url, "key": key, "turns": turns, "seed": rng.random()}
        job = agent_proto.Job(id=f"job-{key}", room=models.Room(sid=f"RM_{key}", name=f"bench-{key}"),
                              type=agent_proto.JobType.JT_ROOM, metadata=json.dumps(plan))
        await pool.launch_job(RunningJobInfo(
            accept_arguments=JobAcceptArguments(name="", identity=f"agent-{key}", metadata=""),
            job=job, url="", token="", worker_id="bench", fake_job=True))

    # calls are answered (staggered) and greeted before the clock starts, as in bench/response_gap.py
    await asyncio.gather(*(answer(k, rng.uniform(0, stagger_s)) for k in keys))
    desk = h.desk
    await h.on_sim(desk.wait(lambda: len(desk.writers) + len(desk.results) >= n, 60 + n))
    jobs = [p for p in pool.processes if p.running_job is not None]
    procs = [psutil.Process(p.pid) for p in jobs if p.pid]
    me = psutil.Process()
    fs = h.forkserver()
    load0 = os.getloadavg()[0]
    t0, busy0, me0, sim0 = time.monotonic(), _busy_cpu_s(), _cpu_s(me), h.simt.cpu_seconds()
    jobs0 = {p.pid: _cpu_s(p) for p in procs}
    main0 = {p.pid: _main_thread_s(p) for p in procs}
    switches0 = {p.pid: _switches(p) for p in procs}
    fs0 = _cpu_s(fs) if fs else 0.0
    peak_rss = 0.0

    async def sample_rss() -> None:
        nonlocal peak_rss
        while True:
            total = 0
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
            peak_rss = max(peak_rss, total / 2**20)
            await asyncio.sleep(1.0)

    sampler = asyncio.create_task(sample_rss())
    await h.on_sim(desk.broadcast("go"))
    within = 30 + turns * 20
    late = 0  # calls that never reported: failed, not a benchmark that ends without a result
    try:
        await h.on_sim(desk.wait(lambda: len(desk.results) >= n, within))
    except TimeoutError:
        late = n - len(desk.results)
    finally:
        sampler.cancel()
        wall = time.monotonic() - t0
        jobs_cpu = sum(_cpu_s(p) - jobs0[p.pid] for p in procs)
        main_cpu = sum(_main_thread_s(p) - main0[p.pid] for p in procs)
        switches = sum(_switches(p) - switches0[p.pid] for p in procs)
        parent_cpu, sim_cpu = _cpu_s(me) - me0, h.simt.cpu_seconds() - sim0
        fs_cpu = (_cpu_s(fs) if fs else 0.0) - fs0
        busy = _busy_cpu_s() - busy0
        mem = _memory(procs)  # every call still up
        await h.on_sim(desk.broadcast("hangup"))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(p.join() for p in jobs)), 30)
    await pool.aclose()

    results = list(desk.results.values())
    gaps = [g for r in results for g in r.get("gaps", [])]
    errors = [r["error"] for r in results if "error" in r] + [f"no result within {within} s"] * late
    lag_p99 = [r["loop_lag_ms"]["p99"] for r in results if r.get("loop_lag_ms", {}).get("p99") is not None]
    lag_max = [r["loop_lag_ms"]["max"] for r in results if r.get("loop_lag_ms", {}).get("max") is not None]
    ours = jobs_cpu + parent_cpu + fs_cpu
    call_minutes = n * wall / 60
    return {
        "calls": n,
        "turns_per_call": turns,
        "gap_ms": stats(gaps),
        "unanswered_turns": sum(r.get("unanswered", 0) for r in results),
        "failed_calls": errors,
        "window_s": round(wall, 2),
        "warm_s": round(warm_s, 1),
        "cpu": {
            "jobs_s": round(jobs_cpu, 2),
            "simulator_s": round(sim_cpu, 2),
            "parent_other_s": round(parent_cpu - sim_cpu, 2),  # the pool's supervision, this harness
            "forkserver_s": round(fs_cpu, 2),
            "jobs_main_thread_s": round(main_cpu, 2),  # the job's event loop; the rest is mostly the VAD's
            "jobs_other_threads_s": round(jobs_cpu - main_cpu, 2),  # executor thread (Silero inference)
            "jobs_voluntary_switches_per_call_s": round(switches / max(1, len(procs)) / wall),
            "jobs_cores": round(jobs_cpu / wall, 3),
            "ours_cores": round(ours / wall, 3),  # jobs + simulator + parent + forkserver
            "machine_busy_cores": round(busy / wall, 3),
            "other_cores": round(max(0.0, busy - ours) / wall, 3),  # whatever else ran on the machine
            "other_cores_before": others_before,  # measured after waiting up to 60 s for a quiet machine
            "waited_for_quiet_s": round(waited, 1),
            "load_avg_1m_at_start": round(load0, 2),
        },
        "cpu_s_per_call_minute": round(jobs_cpu / call_minutes, 3),
        "cpu_s_per_call_minute_with_simulator": round(ours / call_minutes, 3),
        "memory": {
            "jobs_total": mem,
            "per_call": _per(mem, len(procs)),
            "jobs_rss_peak_total_mb": round(peak_rss, 1),
            "prewarmed_idle_per_process": idle_mem,
            "forkserver_rss_mb": round(fs.memory_info().rss / 2**20, 1) if fs else None,
            "parent_rss_mb": round(me.memory_info().rss / 2**20, 1),
        },
        "job_loop_lag_ms": {"p99_median": calls.percentile(lag_p99, 50), "p99_worst": max(lag_p99, default=None),
                            "max_worst": max(lag_max, default=None)},
    }


def print_levels(title: str, levels: list[dict[str, Any]], bound: float | None = None) -> None:
    rows = []
    for r in levels:
        g, c, m = r["gap_ms"], r["cpu"], r["memory"]["per_call"]
        within = None if bound is None or g["p99"] is None else g["p99"] <= bound
        rows.append([r["calls"], g["n"], g["p50"], g["p95"], g["p99"], within, r["unanswered_turns"],
                     len(r["failed_calls"]), c["jobs_cores"], c["ours_cores"], c["other_cores"],
                     r["cpu_s_per_call_minute"], r["cpu_s_per_call_minute_with_simulator"], m.get("rss_mb"),
                     m.get("uss_mb"), m.get("pss_mb"), r["job_loop_lag_ms"]["p99_worst"], r["warm_s"]])
    report.table(title, ["calls", "n", "gap p50", "p95", "p99", "within", "unanswered", "failed", "job cores",
                         "all cores", "other cores", "cpu s/call-min", "+sim", "RSS MB/call", "USS MB/call",
                         "PSS MB/call", "job lag p99", "warm s"], rows)
    for r in levels:
        if r["failed_calls"]:  # why, not only how many
            print(f"{r['calls']} calls: {len(r['failed_calls'])} failed, e.g. {r['failed_calls'][0]}")


async def run(quick: bool) -> dict[str, Any]:
    """The levels: 1, 10, 25, 40 calls while p99 holds, then 50 and 60 while it still does, then one
    level between the last that held and the first that did not (quick: 1, 10, 40, fewer turns)."""
    quiet_logs()
    _prewarm_environment()
    plan = [(1, 6), (10, 3), (40, 3)] if quick else [(1, 10), (10, 5), (25, 5), (40, 5)]
    extra = [] if quick else [(50, 5), (60, 5)]
    h = Harness()
    await h.start()
    levels: list[dict[str, Any]] = []
    single: float | None = None
    bound = 0.0

    def holds(r: dict[str, Any]) -> bool:
        return r["gap_ms"]["p99"] is not None and r["gap_ms"]["p99"] <= bound and not r["failed_calls"]

    try:
        for n, turns in plan:
            levels.append(await run_level(h, n, turns))
            print_levels("capacity (process per job), so far", levels[-1:])
            if single is None:
                single = levels[0]["gap_ms"]["p99"]
                if single is None:
                    raise RuntimeError(f"a single call gave no response gap: {levels[0]['failed_calls']}")
                bound = single + P99_SLACK_MS
            elif not holds(levels[-1]) and not quick:
                break  # on a slower machine, more calls would only starve it (and the harness) further
        for n, turns in extra:
            if not holds(levels[-1]):
                break
            levels.append(await run_level(h, n, turns))
            print_levels("capacity (process per job), so far", levels[-1:])
        ok = max((r["calls"] for r in levels if holds(r)), default=0)
        bad = min((r["calls"] for r in levels if not holds(r) and r["calls"] > ok), default=None)
        if not quick and bad is not None and bad - ok > 10:
            # one level between the last that held and the first that did not, to narrow the answer
            levels.append(await run_level(h, (ok + bad) // 2, 5))
            print_levels("capacity (process per job), so far", levels[-1:])
            levels.sort(key=lambda r: r["calls"])
    finally:
        await h.stop()
    within = [r["calls"] for r in levels if holds(r)]
    capacity = max(within) if within else 0
    print_levels(f"capacity, process per job: p99 bound = single-call p99 {single} + {P99_SLACK_MS:.0f} ms",
                 levels, bound)
    at = next(r for r in levels if r["calls"] == capacity) if capacity else levels[0]
    one = {r["calls"]: r for r in _one_process_reference() or []}
    if one:
        report.table("process per job vs all calls in one process (bench/results/capacity.json)",
                     ["calls", "p99 per-job", "p99 one-process", "cpu s/call-min per-job", "one-process"],
                     [[r["calls"], r["gap_ms"]["p99"], one[r["calls"]]["gap_p99_ms"], r["cpu_s_per_call_minute"],
                       one[r["calls"]]["cpu_s_per_call_minute"]] for r in levels if r["calls"] in one])
    return {
        "executor": {
            "kind": "livekit.agents.ipc.proc_pool.ProcPool, JobExecutorType.PROCESS (ProcJobExecutor)",
            "start_method": "forkserver, preloaded as AgentServer does on Linux (plugins, ipc._preload, "
                            "ipc._preload_freeze)",
            "initialize_process_fnc": "agent.worker.prewarm (settings, every brain, Silero VAD, warm-up)",
            "job": "RunningJobInfo(fake_job=True) launched with ProcPool.launch_job, as console mode does: no "
                   "LiveKit server, a mock room; the entrypoint runs a BenchCall (build_session + "
                   "Receptionist + CallKeeper, the OURS flavour) with the prewarmed VAD, the caller paced in "
                   "real time",
            "why_not_agent.worker.entrypoint": "it needs a LiveKit room, a SIP participant and the stores",
            "simulator": "RealtimeSimulator on its own thread in the parent process (bench.calls."
                         "SimulatorThread): it shares no interpreter with any call; job processes reach its "
                         "script/transcript calls over a unix-socket control line",
        },
        "source": _source(),
        "model_delay_ms": MODEL_DELAY_MS,
        "flavour": OURS.describe(),
        "p99_bound_ms": bound,
        "capacity_calls": capacity,
        "capacity_note": capacity_note(levels, capacity),
        "at_capacity": {"cpu_s_per_call_minute": at["cpu_s_per_call_minute"],
                        "cpu_s_per_call_minute_with_simulator": at["cpu_s_per_call_minute_with_simulator"],
                        "mb_per_call": at["memory"]["per_call"]},
        "levels": levels,
        "one_process_reference": _one_process_reference(),
    }


def capacity_note(levels: list[dict[str, Any]], capacity: int) -> str:
    tried = max(r["calls"] for r in levels)
    if capacity == tried:
        return f"p99 held at every level tried (up to {tried}); the real limit is higher"
    above = min((r for r in levels if r["calls"] > capacity), key=lambda r: r["calls"])
    note = f"p99 exceeded the bound above {capacity} calls"
    others = above["cpu"]["other_cores"]
    if others > 0.3:
        note += (f"; while {above['calls']} calls were measured other programs used {others:.2f} of the 2 cores,"
                 " so on a quiet machine the limit may be somewhat higher")
    return note


def _source() -> dict[str, Any]:
    """Which code was measured: the commit, and tracked files changed on top of it (a shared tree)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = git("status", "--porcelain", "--untracked-files=no").splitlines()
    return {"root": str(ROOT), "commit": git("rev-parse", "HEAD") or None,
            "modified_files": [line[3:] for line in changed]}


def _one_process_reference() -> list[dict[str, Any]] | None:
    """bench/capacity.py's last figures (all calls in one process), for the comparison in the table."""
    path = report.RESULTS / "capacity.json"
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    return [{"date": doc.get("date"), "calls": r["calls"], "gap_p99_ms": r["gap_ms"]["p99"],
             "cpu_s_per_call_minute": r["cpu_s_per_call_minute"]} for r in doc.get("levels", [])]


@report.plot_if_possible
def plot(result: dict[str, Any], *, quick: bool) -> None:
    plt = report.pyplot()
    levels = result["levels"]
    xs = [r["calls"] for r in levels]
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(13, 4))
    a.plot(xs, [r["gap_ms"]["p99"] for r in levels], "^-", label="gap p99, process per job")
    a.plot(xs, [r["gap_ms"]["p50"] for r in levels], "o-", label="gap p50, process per job")
    if inproc := result.get("one_process_reference"):  # bench/capacity.py's figures, for comparison
        a.plot([r["calls"] for r in inproc], [r["gap_p99_ms"] for r in inproc], "^:", color="grey",
               label="gap p99, all calls in one process (capacity.json)")
    a.axhline(result["p99_bound_ms"], color="red", ls="--", lw=0.8, label="single-call p99 + 100 ms")
    a.set_xlabel("concurrent calls")
    a.set_ylabel("ms")
    a.set_title("Response gap vs load")
    a.legend(fontsize=7)
    b.plot(xs, [100 * r["cpu"]["jobs_cores"] for r in levels], "o-", label="job processes")
    b.plot(xs, [100 * r["cpu"]["ours_cores"] for r in levels], "s--", label="+ simulator, pool, forkserver")
    b.plot(xs, [100 * r["cpu"]["other_cores"] for r in levels], "x:", label="rest of the machine")
    b.axhline(200, color="red", ls="--", lw=0.8, label="2 cores")
    b.set_xlabel("concurrent calls")
    b.set_ylabel("% of one core")
    b.set_title("CPU")
    b.legend(fontsize=7)
    for k, style in (("rss_mb", "o-"), ("pss_mb", "s--"), ("uss_mb", "^:")):
        c.plot(xs, [r["memory"]["per_call"].get(k) for r in levels], style, label=k.split("_")[0].upper())
    c.set_xlabel("concurrent calls")
    c.set_ylabel("MB per call (job process)")
    c.set_title("Memory per call")
    c.set_ylim(bottom=0)
    c.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(report.plot_path("capacity_proc", quick=quick), dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1, 10 and 40 calls with fewer turns")
    args = ap.parse_args()
    t0 = time.monotonic()
    result = asyncio.run(run(args.quick))
    print("wrote", report.write("capacity_proc", result, quick=args.quick))
    plot(result, quick=args.quick)
    print(f"\ncapacity_proc: done in {time.monotonic() - t0:.0f} s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
