"""A benchmark run where matplotlib is not installed (`make setup` alone, without the `bench` extra):
its results are written, and its plot is skipped with a message saying what to install, instead of a
traceback that also stopped every benchmark after it in `bench.run`."""

from __future__ import annotations

import sys

import pytest

from bench import barge_in, turn_taking


@pytest.mark.parametrize("plot", [lambda: barge_in.plot({}, quick=True),
                                  lambda: turn_taking.plot({}, quick=True, name="x")])  # fmt: skip
def test_a_plot_without_matplotlib_says_what_to_install(plot, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ModuleNotFoundError
    plot()
    err = capsys.readouterr().err
    assert "no plot drawn: matplotlib is missing" in err and "pip install -e '.[bench]'" in err, err
