"""One Go version statement: the README names the Go the pinned go.mod files need and the release that
`scripts/stack build` fetches when the machine's Go is older, and `make stack` installs a Go where none
is on PATH (a fresh machine). The README, scripts/stack and the go.mod files once said 1.22, 1.24 and
1.26 (issue 16, item 9)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _go_lines() -> set[str]:
    return {
        m.group(1)
        for mod in (ROOT / "scripts" / "stack.d").glob("*/go.mod")
        if (m := re.search(r"^go (\d+\.\d+)", mod.read_text(), re.M))
    }


def test_readme_stack_and_go_mod_state_one_go_version() -> None:
    [needed] = _go_lines()  # every wrapper module needs the same Go
    release = re.search(r"^GO_RELEASE=go([\d.]+)$", (ROOT / "scripts" / "stack").read_text(), re.M)
    assert release, "scripts/stack names the Go release it fetches"
    fetched = release.group(1)
    assert tuple(map(int, fetched.split("."))) >= tuple(map(int, needed.split(".")))
    readme = (ROOT / "README.md").read_text()
    assert f"Go {needed}" in readme and f"go{fetched}" in readme
    other = rf"Go 1\.(?!{re.escape(needed.split('.')[1])})\d+"
    assert not re.search(other, readme), "the README names another Go version"


def test_make_stack_installs_a_go_when_none_is_on_path() -> None:
    # the recipe `make stack` would run (-n prints it without running it)
    out = subprocess.run(["make", "-n", "--no-print-directory", "stack"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    step = [line for line in out.stdout.splitlines() if "golang-go" in line]
    assert step and "command -v go" in step[0], out.stdout[-2000:] + out.stderr[-2000:]
