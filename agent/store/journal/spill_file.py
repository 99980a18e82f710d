"""The journal's spill file: where events wait on disk, fsync'd, while Postgres is down or slow, and
where a crashed process's events wait for the next journal to replay them."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from agent.store.journal.encoding import encode_event, line_n
from agent.store.journal.events import Event


class SpillFile:
    """An append-only, fsync'd JSON-lines file, flock'ed while its journal lives (so a journal starting
    up replays only files whose owner is gone). Methods run on the journal's single spill thread."""

    def __init__(self, path: Path, fd: int | None = None) -> None:
        self.path = path
        self.fd = fd
        self.size = os.fstat(fd).st_size if fd is not None else 0
        self.offset = 0  # bytes already committed to Postgres
        self.refusing = False

    @classmethod
    def claim(cls, path: Path) -> SpillFile | None:
        """Lock a spill file left behind by a dead journal; None if its owner still lives."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_ino != os.stat(path).st_ino:  # replaced or removed meanwhile
                raise FileNotFoundError(path)
        except (BlockingIOError, FileNotFoundError):
            os.close(fd)
            return None
        return cls(path, fd)

    def append(self, data: bytes) -> None:
        if self.fd is None:
            self.fd = _open_locked(self.path)
            self.size = os.fstat(self.fd).st_size
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
            os.fsync(self.fd)
        except OSError:
            os.ftruncate(self.fd, self.size)  # no torn line for the next append to run into
            raise
        self.size += len(data)

    def append_events(self, items: list[tuple[int, Event]]) -> None:
        # after a failed append, later ones fail too until the journal has taken the events back,
        # so the file never holds events newer than ones that went back to memory
        if self.refusing:
            raise OSError("an earlier spill write failed")
        try:
            self.append(b"".join(encode_event(n, e) for n, e in items))
        except OSError:
            self.refusing = True
            raise

    def read(self, offset: int, max_lines: int) -> tuple[list[bytes], int]:
        """Up to max_lines complete lines from offset, and the offset after them."""
        if self.size <= offset:
            return [], offset
        lines: list[bytes] = []
        with open(self.path, "rb") as f:
            f.seek(offset)
            while len(lines) < max_lines:
                line = f.readline()
                if not line.endswith(b"\n"):
                    break  # end of file, or a line torn by a crash mid-write
                lines.append(line)
                offset += len(line)
        return lines, offset

    @property
    def torn_tail(self) -> bool:
        return self.size > self.offset

    def reset_if_consumed(self) -> bool:
        if self.fd is not None and self.size == self.offset:
            os.ftruncate(self.fd, 0)
            self.size = self.offset = 0
            return True
        return False

    def close(self, keep_after: int | None = None) -> None:
        """Release the file: delete it when fully consumed, otherwise keep only the unconsumed lines
        (those with n > keep_after, when given) for the next journal to replay."""
        if self.fd is None:
            return
        if self.size > self.offset:
            lines, _ = self.read(self.offset, 1 << 62)
            if keep_after is not None:
                lines = [ln for ln in lines if line_n(ln) > keep_after]
        else:
            lines = []
        if lines:
            if self.offset > 0 or keep_after is not None:
                tmp = self.path.with_suffix(".tmp")
                with open(tmp, "wb") as f:
                    f.writelines(lines)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
        else:
            self.path.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = None


def _open_locked(path: Path) -> int:
    """The file at `path` for appending, locked before any other process can lock it. A new file is
    made under a hidden name, locked, then renamed into place: created at its name and locked after, a
    journal starting up (or the worker's replay) could claim it in between, find it empty and delete
    it, and the events written next would go to a file nobody can find. A file already there (late
    events of our own; no other process makes a file of this name) is opened and locked, and taken
    only if it is still the one at `path` then."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError:
            tmp = path.with_name(f".{path.name}.new")
            fd = os.open(tmp, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                os.rename(tmp, path)
            except BaseException:
                os.close(fd)
                tmp.unlink(missing_ok=True)
                raise
            return fd
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # replayed and deleted while we waited for the lock: made anew


def spill_files(spill_dir: str | Path) -> list[Path]:
    """The journals' spill files in spill_dir, oldest first (live ones included: they are locked); a
    file deleted as it is listed (replayed, or its journal done with it) is left out."""
    found: list[tuple[float, Path]] = []
    for path in Path(spill_dir).glob("journal-*.jsonl"):
        try:
            found.append((path.stat().st_mtime, path))
        except FileNotFoundError:
            continue
    return [path for _, path in sorted(found)]


def set_aside_path(spill_dir: Path, journal_name: str) -> Path:
    """Where a journal keeps the records Postgres refused for their data (postgres_writes.py)."""
    return spill_dir / f"rejected-{journal_name}.jsonl"


def set_aside_files(spill_dir: str | Path) -> list[Path]:
    """Every journal's file of refused records in spill_dir."""
    return list(Path(spill_dir).glob("rejected-*.jsonl"))
