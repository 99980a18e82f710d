"""What a call costs once it is up and nobody speaks, over the real phone path: one receptionist worker
on the local stack (livekit-server, livekit-sip, the Realtime simulator), `--calls` sipp calls
greeted and then held with both sides silent (RTP flowing both ways, as on a phone line), for
`--seconds`. Prints the share of one core each call costs (the worker's processes, livekit-sip,
livekit-server), where a call's job process spends it by thread, and how often its event loop
wakes (epoll waits a second, read from the kernel's syscall counter when `strace` is installed).

This is the steady cost that bounds how many calls a host holds; `bench.fleet` measures the same
hold after talking turns, among three replicas. Run it on two commits one after the other (a
worktree for the baseline) to compare: the figures move with the machine's load.

`python -m bench.held_calls [--calls 4] [--seconds 30] [--name held_calls]`; writes
bench/results/<name>.json (commit, date, CPU calibration, load average).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.fleet import (
    AGENT_NAME,
    LINE,
    MODEL_DELAY_MS,
    _held_cpu,
    _load,
    _on_calls,
    _thread_seconds,
    _wave,
)
from bench.report import write
from simulator.postgres import migrated_database
from simulator.server import DEFAULT_KEY, RealtimeSimulator
from tests.fixtures.stack import running_stack
from tests.phone.worker import receptionist_worker

ROOT = Path(__file__).resolve().parent.parent


def _quiet_brains(run_dir: Path) -> Path:
    """The shipped brains, with the plumber's "are you still there?" moved past the hold: the hold
    measures a silent line, not the agent asking."""
    brains = run_dir / "brains"
    shutil.copytree(ROOT / "brains", brains)
    plumbing = brains / "plumbing.yaml"
    text = plumbing.read_text()
    for field, seconds in (("silence_prompt_seconds", 120), ("silence_hangup_seconds", 130)):
        text, n = re.subn(rf"^(  {field}:) \d+$", rf"\1 {seconds}", text, flags=re.M)
        if n != 1:
            raise SystemExit(f"brains/plumbing.yaml: no calls.{field} to move")
    plumbing.write_text(text)
    return brains


def _greeting_cost(jobs: list[int]) -> dict[str, Any]:
    """CPU seconds each call's job process has spent by the end of its greeting (since it was started
    as a warm process, which costs little until a call arrives), median over the calls, by thread name."""
    per_job: list[dict[str, float]] = []
    alive: list[float] = []
    for pid in jobs:
        with contextlib.suppress(psutil.Error):
            alive.append(time.time() - psutil.Process(pid).create_time())
        spent: dict[str, float] = {}
        for (_tid, name), seconds in _thread_seconds([pid]).items():
            spent[name] = spent.get(name, 0.0) + seconds
        per_job.append(spent)
    names = sorted(
        {n for job in per_job for n in job}, key=lambda n: -sum(j.get(n, 0.0) for j in per_job)
    )
    return {
        "process_alive_s": round(statistics.median(alive), 1) if alive else None,
        "total_s": round(statistics.median(sum(j.values()) for j in per_job), 3)
        if per_job
        else None,
        "by_thread_s": {
            n: round(statistics.median(j.get(n, 0.0) for j in per_job), 3) for n in names
        },
    }


def _loop_wakeups(pid: int, seconds: float) -> float | None:
    """epoll_wait calls a second on `pid`'s main thread, where the call's event loop runs, over
    `seconds` (strace -c), or None without strace."""
    if shutil.which("strace") is None:
        return None
    out = subprocess.run(["timeout", "-s", "INT", str(seconds), "strace", "-c", "-e", "trace=epoll_wait,epoll_pwait",
                          "-p", str(pid)], capture_output=True, text=True)  # fmt: skip
    calls = 0
    for line in out.stderr.splitlines():
        fields = line.split()
        if fields and fields[-1] in ("epoll_wait", "epoll_pwait"):
            calls += int(fields[3])
    return round(calls / seconds, 1)


async def main(calls: int, seconds: float, env: dict[str, str], keep: bool = False) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix="held-bench-"))
    try:
        async with migrated_database("held") as dsn, RealtimeSimulator(model_delay_ms=MODEL_DELAY_MS) as sim:
            sim.add_script(DEFAULT_KEY, [{"say": LINE}] * (calls + 5))
            with running_stack(run_dir) as stack, receptionist_worker(
                stack, agent_name=AGENT_NAME, openai_base_url=sim.base_url, database_url=dsn,
                log=run_dir / "worker.log", extra_env={"LOG_LEVEL": "INFO", "WORKER_MAX_CALLS": str(calls + 2),
                           "RECORDINGS_DIR": str(run_dir / "recordings"),
                           "BRAIN_PATH": str(_quiet_brains(run_dir)), **env},
                within=180,
            ) as proc:  # fmt: skip
                async with contextlib.AsyncExitStack() as held:
                    load = _load()
                    up, ttg, failures = await _wave(stack, 1000, calls, held)
                    await asyncio.gather(*(c.wait_agent_done(quiet_s=1.0, within=60) for c in up))
                    jobs = _on_calls([proc], sim.port)
                    greeted = _greeting_cost(jobs)
                    wakeups = await asyncio.to_thread(_loop_wakeups, jobs[0], 5.0) if jobs else None
                    cost = await _held_cpu([proc], len(up), sim.port, seconds)
                    return {
                        "what": "calls held silent after the greeting on one worker (start mode, shipped defaults) "
                                "behind livekit-server + livekit-sip on loopback; sipp callers",
                        "calls": calls, "env": env, "answered": len(up), "failures": failures,
                        "greeting_ms": sorted(round(t) for t in ttg), "greeted": greeted, "held": cost,
                        "job_loop_epoll_waits_per_s": wakeups, "load_before": load, "load_after": _load(),
                    }  # fmt: skip
    finally:
        if keep:
            print(f"logs kept in {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=4, help="calls placed at once, then held")
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="how long the silent hold is measured"
    )
    parser.add_argument(
        "--name", default="held_calls", help="the results file's name in bench/results"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the worker (repeatable), to compare one change",
    )
    parser.add_argument("--keep", action="store_true", help="keep the stack's and the worker's logs")
    args = parser.parse_args()
    if args.calls < 1 or args.seconds <= 0:
        parser.error("--calls must be at least 1 and --seconds above 0")
    env = {}
    for item in args.env:
        name, eq, value = item.partition("=")
        if not eq or not name:
            parser.error(f"--env wants NAME=VALUE, got {item!r}")
        env[name] = value
    result = asyncio.run(main(args.calls, args.seconds, env, keep=args.keep))
    path = write(args.name, result, quick=False)
    held, greeted = result["held"], result["greeted"]
    for failure in result["failures"]:
        print(f"not greeted: {failure.splitlines()[0]}")
    print(
        f"greeting (INVITE -> first loud packet) {result['greeting_ms']} ms; a call's job process by the greeting's "
        f"end ({greeted['process_alive_s']} s after it started): {greeted['total_s']} s of CPU: "
        + ", ".join(f"{k} {v:.3f}" for k, v in greeted["by_thread_s"].items() if v >= 0.005)
    )
    print(
        f"{result['answered']} of {result['calls']} calls held silent for {held['seconds']} s; share of one core "
        "per call: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in held["core_per_call"].items())
    )
    print(
        f"a call's own job process ({held['job_processes']} measured), by thread: "
        + ", ".join(
            f"{k} {100 * v:.1f}%"
            for k, v in held["job_process_core_by_thread"].items()
            if v >= 0.001
        )
        + f"; own memory (USS) {held['job_process_mb']['uss_median']} MB"
    )
    print(
        f"its event loop's epoll waits: {result['job_loop_epoll_waits_per_s']} a second "
        f"(load {result['load_before']} -> {result['load_after']})"
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli()
