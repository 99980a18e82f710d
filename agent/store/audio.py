"""Call audio off the worker's disk: recordings and voicemails in S3-compatible storage.

A worker writes a call's recording (`RECORDINGS_DIR/<call id>.ogg`) and a voicemail
(`VOICEMAIL_DIR/<call id>.wav`) to its own disk. On a fleet that disk is the pod's: gone with it, and out
of reach of the owner's console and of `receptionist forget`. With `AUDIO_BUCKET` set
(`s3://bucket/prefix`: AWS S3, MinIO, Cloudflare R2, Backblaze B2, ...), the worker's main process
moves each file there once its row says it is whole (`AudioMover`): a recording once its call row
names it (written when the file is closed), a voicemail once its message row does. The row then names
the object (`s3://bucket/prefix/recordings/<call id>.ogg`) and the file is deleted.

Nothing is lost on the way, and nothing erased comes back:
- the file is deleted only once the object is stored and the row names it; with the storage or
  Postgres down it stays, and the next round (every `MOVE_EVERY_S`, and at start-up) tries again;
- a row erased while its file was being stored takes the new object with it;
- a file no row names, of a call that ended `ORPHANED_AFTER` ago or more, was erased (by `forget` or
  retention run where this disk is not) or never linked to its call (unreadable): it is deleted.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import psycopg

log = logging.getLogger(__name__)

MOVE_EVERY_S = 15.0
# a call's records reach Postgres within this, outages of its writes included (its lost-call sweep gives
# up on a row after as long): a file still unnamed by then was erased or never linked
ORPHANED_AFTER = timedelta(hours=1)
_URL = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?")


class Kind(NamedTuple):
    """One kind of audio a worker leaves, and the row that names it."""

    table: str
    column: str  # where the row names it: a path on a worker's disk, or an s3:// url
    call_column: str  # the row's call (the file is named after it)
    suffix: str
    content_type: str
    clear_also: str = ""  # what else the row says of the audio, emptied with it


KINDS = {
    "recordings": Kind("calls", "recording_path", "id", ".ogg", "audio/ogg", ", recording_seconds = NULL"),
    "voicemails": Kind("messages", "audio_path", "call_id", ".wav", "audio/wav"),
}


class AudioBucketInvalid(ValueError):
    pass


@dataclass(frozen=True)
class AudioBucket:
    """Where call audio goes: a bucket and a key prefix ("" or ending in "/")."""

    name: str
    prefix: str = ""

    @classmethod
    def parse(cls, url: str) -> AudioBucket:
        found = _URL.fullmatch(url.strip())
        if found is None:
            raise AudioBucketInvalid(
                f"{url!r} is not an S3 bucket: write s3://bucket or s3://bucket/prefix (bucket names are "
                "3-63 lower-case letters, digits, dots and dashes)"
            )
        prefix = (found.group(2) or "").strip("/")
        return cls(found.group(1), prefix + "/" if prefix else "")

    def key(self, kind: str, file_name: str) -> str:
        return f"{self.prefix}{kind}/{file_name}"

    def url(self, key: str) -> str:
        return f"s3://{self.name}/{key}"

    def key_of(self, url: str) -> str | None:
        """The key of an object of this bucket and prefix, or None for anything else."""
        head = f"s3://{self.name}/{self.prefix}"
        return url[len(f"s3://{self.name}/") :] if url.startswith(head) and len(url) > len(head) else None


def stored(location: str) -> bool:
    """Whether a row's audio location is an object (else a path on a worker's disk)."""
    return location.startswith("s3://")


class AudioStore:
    """The bucket's objects: put, read, delete. boto3 is imported on first use, so a worker that keeps
    audio on its disk never loads it."""

    def __init__(
        self, bucket: AudioBucket, *, endpoint_url: str | None = None, region: str | None = None,
        access_key_id: str | None = None, secret_access_key: str | None = None,
    ) -> None:  # fmt: skip
        self.bucket = bucket
        self._options = {
            "endpoint_url": endpoint_url or None,
            "region_name": region or None,
            "aws_access_key_id": access_key_id or None,
            "aws_secret_access_key": secret_access_key or None,
        }
        self._client: Any = None
        self._building = threading.Lock()  # boto3's default session builds one client at a time

    @classmethod
    def from_settings(cls, settings: Any) -> AudioStore | None:
        if not settings.audio_bucket:
            return None
        secret = settings.s3_secret_access_key
        return cls(
            AudioBucket.parse(settings.audio_bucket), endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region, access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
        )  # fmt: skip

    def _s3(self) -> Any:
        """The client (thread-safe once built); call it from a thread: the first use imports boto3."""
        with self._building:
            if self._client is None:
                import boto3
                from botocore.config import Config

                # a storage that does not answer fails this round quickly; the file waits for the next
                config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2, "mode": "standard"})
                self._client = boto3.client("s3", config=config, **self._options)
            return self._client

    async def put(self, path: Path, key: str, content_type: str) -> str:
        """Store the file under `key`; its url once stored (a PUT replaces, so a retry is harmless)."""
        await asyncio.to_thread(
            lambda: self._s3().upload_file(str(path), self.bucket.name, key, ExtraArgs={"ContentType": content_type})
        )
        return self.bucket.url(key)

    async def read(self, url: str) -> bytes | None:
        """The object's bytes; None when it is not one of this bucket's, or not there."""
        key = self.bucket.key_of(url)
        if key is None:
            return None

        def get() -> bytes | None:
            from botocore.exceptions import ClientError

            try:
                return self._s3().get_object(Bucket=self.bucket.name, Key=key)["Body"].read()
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None
                raise

        return await asyncio.to_thread(get)

    async def delete(self, url: str) -> bool:
        """Delete the object (already gone is fine); False when the url is not this bucket's."""
        key = self.bucket.key_of(url)
        if key is None:
            return False
        await asyncio.to_thread(lambda: self._s3().delete_object(Bucket=self.bucket.name, Key=key))
        return True


@dataclass
class MoveRound:
    moved: int = 0
    waiting: int = 0  # no row names the file yet (a call going on, or its records not yet in Postgres)
    orphans_deleted: int = 0
    failed: int = 0  # the storage or Postgres refused: tried again next round


class AudioMover:
    """The worker's main process: moves finished calls' audio from its disk to the bucket."""

    def __init__(self, store: AudioStore, database_url: str, *, recordings_dir: Path, voicemail_dir: Path) -> None:
        self.store = store
        self.database_url = database_url
        self.dirs = {"recordings": recordings_dir, "voicemails": voicemail_dir}

    async def run(self) -> None:
        while True:
            try:
                done = await self.move_round()
                if done.moved or done.orphans_deleted or done.failed:
                    log.info("call audio: %d moved to %s, %d waiting for their rows, %d orphans deleted, "
                             "%d failed (tried again)", done.moved, self.store.bucket.url(self.store.bucket.prefix),
                             done.waiting, done.orphans_deleted, done.failed)  # fmt: skip
            except Exception:  # noqa: BLE001 - every file stays on disk and is tried again
                log.exception("moving call audio to the bucket failed; the files stay and are tried again")
            await asyncio.sleep(MOVE_EVERY_S)

    def _files(self) -> Iterator[tuple[str, Path]]:
        for kind, directory in self.dirs.items():
            if directory.is_dir():
                for path in sorted(directory.glob(f"*{KINDS[kind].suffix}")):
                    yield kind, path

    async def move_round(self) -> MoveRound:
        done = MoveRound()
        files = await asyncio.to_thread(lambda: list(self._files()))
        if not files:
            return done
        # never prepared: DATABASE_URL may be PgBouncer in transaction mode, and the same statements
        # run once per file here (psycopg prepares from the fifth)
        async with await psycopg.AsyncConnection.connect(
            self.database_url, autocommit=True, connect_timeout=5, prepare_threshold=None
        ) as conn:
            for kind, path in files:
                try:
                    outcome = await self._move(conn, kind, path)
                except (OSError, psycopg.Error) as e:
                    log.warning("could not move %s to the bucket (%s); tried again next round", path.name, e)
                    outcome = "failed"
                except Exception as e:  # noqa: BLE001 - botocore's errors: the storage refused or is down
                    log.warning("the bucket refused %s (%s); tried again next round", path.name, e)
                    outcome = "failed"
                setattr(done, outcome, getattr(done, outcome) + 1)
        return done

    async def _move(self, conn: psycopg.AsyncConnection[Any], kind: str, path: Path) -> str:
        table, column, by_call, _, content_type, _ = KINDS[kind]
        try:
            call_id = uuid.UUID(path.stem)
        except ValueError:
            return "waiting"  # not a file a job process wrote: left alone
        # the row names the file as the job process wrote it: from the settings' directory (maybe
        # relative to the worker's directory) or resolved
        names = [str(path), str(await asyncio.to_thread(path.resolve))]
        find = f"SELECT id FROM {table} WHERE {by_call} = %s AND {column} = ANY(%s) LIMIT 1"
        row = await (await conn.execute(find, (call_id, names))).fetchone()
        if row is None and kind == "voicemails":
            # a worker of the code before messages.audio_path named it in the message's text alone
            await conn.execute(
                "UPDATE messages SET audio_path = %s WHERE call_id = %s AND audio_path IS NULL"
                " AND body LIKE 'Voicemail (%%' AND right(body, length(%s) + 2) = ': ' || %s",
                (names[1], call_id, names[1], names[1]),
            )
            row = await (await conn.execute(find, (call_id, names))).fetchone()
        if row is None:
            return await self._unnamed(conn, call_id, path)
        url = await self.store.put(path, self.store.bucket.key(kind, path.name), content_type)
        cur = await conn.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s AND {column} = ANY(%s)",
                                 (url, row[0], names))  # fmt: skip
        if cur.rowcount == 0:
            now = await (await conn.execute(f"SELECT {column} FROM {table} WHERE id = %s", (row[0],))).fetchone()
            if now is None or now[0] != url:  # not another worker's mover of this same disk, done first
                # erased while it was being stored (forget, retention): the object goes with it
                await self.store.delete(url)
                log.info("%s was erased as it was stored: the object is deleted too", path.name)
        await asyncio.to_thread(path.unlink, missing_ok=True)
        return "moved"

    async def _unnamed(self, conn: psycopg.AsyncConnection[Any], call_id: uuid.UUID, path: Path) -> str:
        """A file no row names: its call still going on or not yet in Postgres (it waits), or erased or
        never linked, once the call ended long enough ago (it goes)."""
        row = await (await conn.execute(
            "SELECT ended_at < now() - %s FROM calls WHERE id = %s", (ORPHANED_AFTER, call_id)
        )).fetchone()  # fmt: skip
        if row is None or not row[0]:
            return "waiting"
        await asyncio.to_thread(path.unlink, missing_ok=True)
        log.info("%s is named by no row of its ended call (erased, or never linked): deleted", path.name)
        return "orphans_deleted"
