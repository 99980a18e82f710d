"""Installing the project (what `make demo` and `make test` do first) prints no setuptools warnings:
the package metadata is what the pinned build backend expects, not a form it is phasing out."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_editable_install_prints_no_deprecation_warning(tmp_path: Path) -> None:
    # a copy, so the build leaves no egg-info in the checkout
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    for package in ("agent", "simulator", "sip", "web"):
        shutil.copytree(ROOT / package, project / package, ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    # this environment's pip (the Makefile's, upgraded), which shows what the build backend prints
    out = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
         "--disable-pip-version-check", "-e", str(project)],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=300,
    )
    printed = out.stdout + out.stderr
    assert out.returncode == 0, printed[-3000:]
    assert "deprecat" not in printed.lower(), printed[-3000:]


def _install(tmp_path: Path, packages: tuple[str, ...]) -> Path:
    """The project with only `packages` copied in, installed (no dependencies) into a fresh venv;
    returns its bin directory."""
    project = tmp_path / "project"
    project.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    for package in packages:
        shutil.copytree(ROOT / package, project / package, ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
         "--disable-pip-version-check", "-q", str(project)],  # fmt: skip
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return venv / "bin"


def test_the_worker_package_runs_without_the_simulator_and_gains_its_commands_with_it(tmp_path: Path) -> None:
    # as the Dockerfile builds the image: no simulator
    bare = _install(tmp_path / "image", ("agent", "sip", "web"))
    # only what is installed: not this checkout on PYTHONPATH, not the current directory
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([bare / "receptionist", "--help"], capture_output=True, text=True, timeout=60,
                         env=env, cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "check-brain" in out.stdout and "simulate" not in out.stdout, out.stdout
    # a checkout (make setup): the simulator's commands are there
    full = _install(tmp_path / "checkout", ("agent", "simulator", "sip", "web"))
    out = subprocess.run([full / "receptionist", "--help"], capture_output=True, text=True, timeout=60,
                         env=env, cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "simulate" in out.stdout and "simulator" in out.stdout, out.stdout


def test_nothing_the_worker_or_the_console_runs_imports_the_simulator() -> None:
    import ast

    importers = []
    for package in ("agent", "web", "sip"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = (
                    [a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                )  # fmt: skip
                if any(n == "simulator" or n.startswith("simulator.") for n in names):
                    importers.append(str(path.relative_to(ROOT)))
    assert importers == []
