"""Grounding guard recall and precision: every statement of the labelled corpus
(tests/brain/grounding_corpus.yaml) through `check_turn`, scored per kind, with the time one sentence takes.

    python -m bench.grounding            # prints the tables, writes bench/results/grounding.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from agent.brain import Brain, Violation, check_turn, load_brain
from bench.report import table, write

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "brain" / "grounding_corpus.yaml"


@dataclass(frozen=True)
class Statement:
    brain: str
    now: datetime
    say: str
    false_claim: bool
    kind: str
    must_catch: bool


@dataclass(frozen=True)
class Judged:
    statement: Statement
    found: list[Violation]
    seconds: float

    @property
    def flagged(self) -> bool:
        return bool(self.found)


def load_corpus(path: Path = CORPUS) -> tuple[dict[str, Brain], list[Statement]]:
    doc = yaml.safe_load(path.read_text())
    brains = {name: load_brain(ROOT / file) for name, file in doc["brains"].items()}
    clocks = {name: datetime.fromisoformat(at) for name, at in doc["clocks"].items()}
    statements = []
    for row in doc["statements"]:
        if row["verdict"] not in ("true", "false-claim"):
            raise ValueError(f"{path}: {row['say']!r}: verdict must be 'true' or 'false-claim'")
        statements.append(Statement(
            brain=row["brain"], now=clocks[row["now"]], say=row["say"],
            false_claim=row["verdict"] == "false-claim", kind=row["kind"],
            must_catch=bool(row.get("must_catch")),
        ))  # fmt: skip
    return brains, statements


def judge(brains: dict[str, Brain], statements: list[Statement]) -> list[Judged]:
    out = []
    for s in statements:
        t = time.perf_counter()
        found = check_turn(brains[s.brain], s.say, s.now)
        out.append(Judged(s, found, time.perf_counter() - t))
    return out


def scores(judged: list[Judged]) -> dict[str, Any]:
    false_claims = [j for j in judged if j.statement.false_claim]
    true_ones = [j for j in judged if not j.statement.false_claim]
    caught = sum(j.flagged for j in false_claims)
    alarms = sum(j.flagged for j in true_ones)
    flagged = caught + alarms
    return {
        "statements": len(judged),
        "false_claims": len(false_claims),
        "caught": caught,
        "false_alarms": alarms,
        "recall": round(caught / len(false_claims), 4) if false_claims else None,
        "precision": round(caught / flagged, 4) if flagged else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args()
    brains, statements = load_corpus(args.corpus)
    judge(brains, statements)  # a cold pass first: regexes compiled, each brain's facts worked out
    judged = judge(brains, statements)
    kinds = sorted({j.statement.kind for j in judged})
    per_kind = {k: scores([j for j in judged if j.statement.kind == k]) for k in kinds}
    total = scores(judged)
    table("grounding guard on the labelled corpus", ["kind", "statements", "false claims", "caught", "false alarms",
          "recall", "precision"], [[k, v["statements"], v["false_claims"], v["caught"], v["false_alarms"], v["recall"],
          v["precision"]] for k, v in [*per_kind.items(), ("all", total)]])  # fmt: skip
    ms = sorted(j.seconds * 1000 for j in judged)
    timing = {"median_ms": round(statistics.median(ms), 3), "p99_ms": round(ms[int(0.99 * (len(ms) - 1))], 3),
              "max_ms": round(ms[-1], 3)}  # fmt: skip
    table(
        "time per statement (one sentence, check_turn)",
        ["median ms", "p99 ms", "max ms"],
        [[timing["median_ms"], timing["p99_ms"], timing["max_ms"]]],
    )
    missed = [j for j in judged if j.statement.false_claim and not j.flagged]
    alarms = [j for j in judged if not j.statement.false_claim and j.flagged]
    for title, rows in (("missed false claims", missed), ("false alarms", alarms)):
        if rows:
            table(
                title,
                ["brain", "kind", "statement"],
                [[j.statement.brain, j.statement.kind, j.statement.say] for j in rows],
            )
    path = write("grounding", {
        "corpus": str(args.corpus.relative_to(ROOT)) if args.corpus.is_relative_to(ROOT) else str(args.corpus),
        "all": total, "per_kind": per_kind, "time_per_statement": timing,
        "missed": [{"brain": j.statement.brain, "kind": j.statement.kind, "say": j.statement.say} for j in missed],
        "false_alarms": [{"brain": j.statement.brain, "say": j.statement.say,
                          "corrections": [v.correction for v in j.found]} for j in alarms],
    }, quick=False)  # fmt: skip
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
