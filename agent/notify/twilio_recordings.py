"""A voicemail Twilio recorded for us (agent/notify/voice_fallback.py): its audio fetched into
VOICEMAIL_DIR (or AUDIO_BUCKET), named by its message row, then deleted at Twilio, so the caller's voice
is kept in one place, under the retention and `forget` rules.

What cannot be done at once (Twilio unreachable, a recording not ready, a refused delete) is noted in
Postgres (`twilio_recordings`, agent/store/twilio_answered.py) and tried again by `notify inbound`,
5 minutes later and then at doubling waits up to 6 hours, until it is done; a voicemail erased
meanwhile is then only deleted at Twilio.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import tempfile
from pathlib import Path

import aiohttp
import psycopg
from psycopg_pool import AsyncConnectionPool

from agent.store import twilio_answered as answered
from agent.store.audio import AudioStore

log = logging.getLogger("receptionist.twilio_fallback")

FETCH_TRIES = 3  # tries at once, as the recording is announced; later ones are one try each
RETRY_AFTER_S = 300.0  # the first wait before a recording is tried again; doubled each time
RETRY_EVERY_S = 30.0  # how often `notify inbound` looks for recordings due


class TwilioRecordings:
    """Fetches and deletes the voicemails' audio at Twilio for one `notify inbound`."""

    def __init__(
        self, pool: AsyncConnectionPool, *, account_sid: str | None, auth_token: str, voicemail_dir: Path,
        audio: AudioStore | None = None,
    ) -> None:  # fmt: skip
        self.pool, self.voicemail_dir, self.audio = pool, voicemail_dir, audio
        # Twilio's media and REST URLs take the account's basic auth
        self._auth = ({"Authorization": "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()}
                      if account_sid else None)  # fmt: skip
        self._http: aiohttp.ClientSession | None = None
        self.fetch_retry_s = 1.0  # the wait before the second try at once, doubled before the third
        self.retry_after_s = RETRY_AFTER_S
        self.retry_every_s = RETRY_EVERY_S

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self._http

    async def recorded(self, call_sid: str, recording_url: str) -> None:
        """Twilio announced the voicemail's audio (its message row is written): fetch it now, or note it
        to be tried again."""
        if await answered.voicemail_audio(self.pool, call_sid) is not None:
            return  # a repeated request: kept already
        if self._auth is None or not recording_url:
            log.error("voicemail of %s left at Twilio: %s", call_sid,
                      "TWILIO_ACCOUNT_SID is not set" if recording_url else "no RecordingUrl")  # fmt: skip
            return
        await answered.recording_at_twilio(self.pool, recording_url, call_sid)
        await self._try(recording_url, call_sid, tries=FETCH_TRIES)

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: every `retry_every_s`, the recordings due tried again."""
        while not stop.is_set():
            try:
                await self.retry_due()
            except Exception:  # noqa: BLE001 - Postgres away: the next round tries again
                log.warning("voicemails at Twilio not looked at now", exc_info=True)
            try:
                await asyncio.wait_for(stop.wait(), self.retry_every_s)
            except TimeoutError:
                pass

    async def retry_due(self) -> int:
        """Each recording whose next try is due, tried once; returns how many were tried."""
        due = await answered.recordings_due(self.pool)
        for url, call_sid in due:
            await self._try(url, call_sid, tries=1)
        return len(due)

    async def _try(self, url: str, call_sid: str, *, tries: int) -> None:
        """`_settle`; a failure of our own (the disk, the bucket) is tried again later like Twilio's.
        Postgres away is left to the caller: its request waits on disk, the loop's next round."""
        try:
            await self._settle(url, call_sid, tries=tries)
        except psycopg.OperationalError:
            raise
        except Exception as e:  # noqa: BLE001 - kept for the next try, never lost
            log.exception("voicemail of %s not kept this time", call_sid)
            await self._later(url, call_sid, f"{type(e).__name__}: {e}")

    async def _settle(self, url: str, call_sid: str, *, tries: int) -> None:
        """Fetched and kept unless it is kept already or its message is erased, then deleted at Twilio;
        whatever fails is tried again later."""
        if await answered.recording_needs_fetching(self.pool, url):
            body, problem = await self._download(url, call_sid, tries)
            if body is None:
                await self._later(url, call_sid, f"fetch: {problem}")
                return
            await self._keep(call_sid, body)
        problem = await self._delete_at_twilio(url)
        if problem is not None:
            await self._later(url, call_sid, f"delete: {problem}")
            return
        await answered.recording_done(self.pool, url)

    async def _later(self, url: str, call_sid: str, problem: str) -> None:
        wait = await answered.recording_failed(self.pool, url, problem, first_wait_s=self.retry_after_s)
        log.error("voicemail of %s left at Twilio (%s): %s; tried again in %.0f s", call_sid, url, problem, wait)

    async def _download(self, url: str, call_sid: str, tries: int) -> tuple[bytes | None, str]:
        http, problem = self._session(), ""
        for attempt in range(1, tries + 1):
            try:
                async with http.get(url + ".wav", headers=self._auth) as resp:
                    if resp.status == 200:
                        return await resp.read(), ""
                    problem = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as e:
                problem = str(e) or type(e).__name__
            log.warning("voicemail of %s: fetch %d of %d failed: %s", call_sid, attempt, tries, problem)
            if attempt < tries:
                await asyncio.sleep(self.fetch_retry_s * attempt)
        return None, problem

    async def _keep(self, call_sid: str, body: bytes) -> None:
        """The audio where its message row says it is; not kept when the row was erased meanwhile."""
        path = await asyncio.to_thread(self._write, f"{answered.call_id_of(call_sid)}.wav", body)
        location = str(path)
        if self.audio is not None:
            location = await self.audio.put(path, self.audio.bucket.key("voicemails", path.name), "audio/wav")
            path.unlink(missing_ok=True)
        if not await answered.name_voicemail_audio(self.pool, call_sid, location):
            log.warning("voicemail of %s erased while it was fetched: not kept", call_sid)
            if self.audio is not None:
                await self.audio.delete(location)
            path.unlink(missing_ok=True)

    async def _delete_at_twilio(self, url: str) -> str | None:
        """None once Twilio no longer holds it, else what went wrong."""
        try:
            async with self._session().delete(url + ".json", headers=self._auth) as resp:
                return None if resp.status in (200, 204, 404) else f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError) as e:
            return str(e) or type(e).__name__

    def _write(self, name: str, body: bytes) -> Path:
        self.voicemail_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.voicemail_dir, prefix=".fetch-", suffix=".wav")
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        path = (self.voicemail_dir / name).resolve()
        os.replace(tmp, path)
        return path
