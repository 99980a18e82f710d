"""The brain files as the console reads them, fresh from disk on each request: a business's brain for
an owner's move (its hours, services and booking rules), and each file with its validation result for
the Brain page. Which business a file belongs to is the name it gives, so an owner sees only theirs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from agent.brain import Brain, BrainError, load_brain, load_brains
from agent.store.accounts import Viewer


@dataclass(frozen=True)
class BrainFile:
    """One brain file: its text, and either the brain it validates to or why it does not."""

    path: Path
    text: str
    business: str | None  # as the file names it; None when even that cannot be read
    brain: Brain | None
    problems: list[tuple[str, str, int | None]]  # (field, reason, line) from the validator


def _files(brain_path: Path) -> list[Path]:
    # the same files the worker's load_brains reads
    if brain_path.is_dir():
        return sorted(p for p in brain_path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [brain_path] if brain_path.exists() else []


def _named_business(text: str) -> str | None:
    """The business a file that fails validation says it is for, when its YAML gets that far."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    business = data.get("business") if isinstance(data, dict) else None
    name = business.get("name") if isinstance(business, dict) else None
    return name if isinstance(name, str) else None


def _problems(error: BrainError) -> list[tuple[str, str, int | None]]:
    return [(where, reason, line) for (where, reason), line in zip(error.problems, error.lines, strict=True)]


def brain_files(brain_path: Path | None, viewer: Viewer) -> list[BrainFile]:
    """The brain files of the viewer's businesses (an operator: every file), each validated as the
    worker validates it, including the clash of one file's numbers with another's."""
    if brain_path is None:
        return []
    clash: BrainError | None = None
    try:
        load_brains(brain_path)
    except BrainError as e:
        clash = e
    found = []
    for path in _files(brain_path):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            text = f"(cannot read the file: {e})"
        try:
            brain: Brain | None = load_brain(path)
            problems = _problems(clash) if clash is not None and clash.path == path else []
        except BrainError as e:
            brain, problems = None, _problems(e)
        business = brain.business.name if brain is not None else _named_business(text)
        if viewer.everyone or business in viewer.businesses:
            found.append(BrainFile(path, text, business, brain if not problems else None, problems))
    return found


def brain_of(brain_path: Path | None, business: str) -> Brain | None:
    """The valid brain of `business`, or None when no valid file names it."""
    if brain_path is None:
        return None
    for path in _files(brain_path):
        try:
            brain = load_brain(path)
        except BrainError:
            continue
        if brain.business.name == business:
            return brain
    return None
