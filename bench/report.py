"""Where benchmark numbers go: plain-text tables on stdout, bench/results/<name>.json with the machine
and the date, and PNG plots the README embeds."""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    with_model = Path("/proc/cpuinfo")
    if with_model.exists():
        for line in with_model.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for pkg in ("livekit-agents", "livekit-plugins-openai", "livekit-plugins-silero", "livekit",
                "livekit-local-inference", "pipecat-ai", "onnxruntime"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "commit": _commit(),
        "cpu_calibration_ms": cpu_calibration_ms(),
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
    }


def _commit() -> str | None:
    """The commit measured, marked dirty when the tree differs from it (then the figure is not its)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=RESULTS.parent, capture_output=True,
                              text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=RESULTS.parent,
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty else "")


def cpu_calibration_ms(rounds: int = 5) -> float:
    """The best of a few runs of a fixed pure-Python and hashing workload, in ms: how fast this machine
    is right now. Figures from two runs compare only after dividing by it (these machines are shared)."""
    best = float("inf")
    block = bytes(range(256)) * 4096  # 1 MiB
    for _ in range(rounds):
        t = time.perf_counter()
        total = 0
        for i in range(300_000):
            total += i * i % 7
        for _ in range(16):
            hashlib.sha256(block).digest()
        best = min(best, (time.perf_counter() - t) * 1000)
    return round(best, 2)


def write(name: str, data: dict[str, Any], *, quick: bool) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}{'-quick' if quick else ''}.json"
    doc = {"benchmark": name, "date": datetime.now(UTC).isoformat(timespec="seconds"),
           "quick": quick, "machine": machine(), **data}
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return path


def table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [f"\n== {title}", line, "-" * len(line)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    text = "\n".join(out)
    print(text, flush=True)
    return text


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"
    return str(v)


def plot_path(name: str, *, quick: bool) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS / f"{name}{'-quick' if quick else ''}.png"


def main(name: str, doc: str | None, run: Callable[[bool], Coroutine[Any, Any, dict[str, Any]]], *, quick: str) -> None:
    """A bench program's command line: `--quick` (what `quick` says it plays), the run, its results
    written as bench/results/`name`[-quick].json, and how long it took."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help=quick)
    args = ap.parse_args()
    t0 = time.monotonic()
    result = asyncio.run(run(args.quick))
    print("wrote", write(name, result, quick=args.quick))
    print(f"\n{name}: done in {time.monotonic() - t0:.0f} s")


def plot_if_possible(plot: Callable[..., None]) -> Callable[..., None]:
    """A benchmark's plot, drawn where matplotlib is installed (the `bench` extra, which `make bench`
    installs); elsewhere the run says so and goes on: its results are already written, and the
    benchmarks after it in `bench.run` still run."""

    @functools.wraps(plot)
    def draw(*args: Any, **kwargs: Any) -> None:
        try:
            import matplotlib  # noqa: F401
        except ModuleNotFoundError:
            print(f"{plot.__module__}: no plot drawn: matplotlib is missing; install the bench extra with "
                  f"`.venv/bin/pip install -e '.[bench]'` (`make bench` does)", file=sys.stderr)  # fmt: skip
            return
        plot(*args, **kwargs)

    return draw


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
