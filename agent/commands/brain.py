"""`receptionist check-brain`: validate brain files, or a directory of them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def check_brain(args: argparse.Namespace) -> int:
    from agent.brain import BrainError, load_brain, load_brains

    status = 0
    for raw in args.paths:
        path = Path(raw)
        try:
            if path.is_dir():
                directory = load_brains(path)
                for brain in directory.all:
                    print(
                        f"ok: {brain.business.name} ({', '.join(brain.business.numbers) or 'no numbers'})"
                    )
            else:
                brain = load_brain(path)
                print(f"ok: {path}: {brain.business.name}, {len(brain.services)} services")
        except BrainError as e:
            print(str(e), file=sys.stderr)
            status = 1
    return status
