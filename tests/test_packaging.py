"""Installing the project (what `make demo` and `make test` do first) prints no setuptools warnings:
the package metadata is what the pinned build backend expects, not a form it is phasing out."""

from __future__ import annotations

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
