"""Call audio moved off the worker's disk to S3-compatible storage (agent/store/audio.py), against a real
S3 API on loopback: what is in the bucket, on the disk and on the rows after each round, with the
storage down, a row erased midway, and `forget` and retention reaching the objects."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from agent.settings import SettingsError, load_settings
from agent.store.audio import AudioBucket, AudioBucketInvalid, AudioMover, AudioStore
from agent.store.privacy import AudioUnreachable, RetentionPolicy, forget, sweep
from tests.fixtures.personal_data import seed_call
from tests.fixtures.s3 import BUCKET, objects, store_at

PLUMBING, DANA, SAM = "Rose City Plumbing", "+15035550111", "+15035550222"
NOW = datetime.now(UTC)


def _on_a_worker(db_url: str, tmp_path: Path, caller: str = DANA, at: datetime | None = None) -> tuple[uuid.UUID, Path, Path]:
    """A finished call with a recording and a voicemail in this worker's directories, its rows naming
    them as the job process wrote them (the recording relative to the worker's directory)."""
    call = seed_call(db_url, PLUMBING, caller, at or NOW - timedelta(minutes=5))
    recording = tmp_path / "recordings" / call.recording.name
    voicemail = tmp_path / "voicemail" / call.voicemail.name
    for src, dst in ((call.recording, recording), (call.voicemail, voicemail)):
        dst.parent.mkdir(exist_ok=True)
        dst.write_bytes(src.read_bytes() + call.id.bytes)  # each call's audio its own bytes
        src.unlink()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE calls SET recording_path = %s WHERE id = %s", (str(recording), call.id))
        conn.execute("UPDATE messages SET audio_path = %s WHERE call_id = %s AND audio_path IS NOT NULL",
                     (str(voicemail.resolve()), call.id))  # fmt: skip
    return call.id, recording, voicemail


def _mover(store: AudioStore, db_url: str, tmp_path: Path) -> AudioMover:
    return AudioMover(store, db_url, recordings_dir=tmp_path / "recordings", voicemail_dir=tmp_path / "voicemail")


def _locations(db_url: str, call_id: uuid.UUID) -> tuple[str | None, str | None]:
    with psycopg.connect(db_url) as conn:
        recording = conn.execute("SELECT recording_path FROM calls WHERE id = %s", (call_id,)).fetchone()
        voicemail = conn.execute(
            "SELECT audio_path FROM messages WHERE call_id = %s AND body LIKE 'Voicemail%%'", (call_id,)
        ).fetchone()
    return (recording[0] if recording else None), (voicemail[0] if voicemail else None)


def _once_stored(
    monkeypatch: pytest.MonkeyPatch, store: AudioStore, path: Path, db_url: str, sql: str, call_id: uuid.UUID
) -> None:
    """Run `sql` (with the object's %(url)s and the call's %(id)s) just as `path` has been stored."""
    put = store.put

    async def stored_then(stored_path: Path, key: str, content_type: str) -> str:
        url = await put(stored_path, key, content_type)
        if stored_path == path:
            with psycopg.connect(db_url, autocommit=True) as conn:
                conn.execute(sql, {"url": url, "id": call_id})
        return url

    monkeypatch.setattr(store, "put", stored_then)


async def test_a_finished_calls_recording_and_voicemail_move_to_the_bucket(db_url: str, tmp_path: Path, s3) -> None:
    call_id, recording, voicemail = _on_a_worker(db_url, tmp_path)
    audio = {"recording": recording.read_bytes(), "voicemail": voicemail.read_bytes()}

    done = await _mover(s3, db_url, tmp_path).move_round()

    assert (done.moved, done.waiting, done.failed) == (2, 0, 0)
    keys = (f"rose-city/recordings/{call_id}.ogg", f"rose-city/voicemails/{call_id}.wav")
    assert objects(s3) == {keys[0]: audio["recording"], keys[1]: audio["voicemail"]}
    assert _locations(db_url, call_id) == tuple(f"s3://{BUCKET}/{k}" for k in keys)
    assert not recording.exists() and not voicemail.exists()
    again = await _mover(s3, db_url, tmp_path).move_round()
    assert (again.moved, again.waiting) == (0, 0)


async def test_with_the_storage_down_nothing_is_lost_and_the_next_round_moves_it(
    db_url: str, tmp_path: Path, s3
) -> None:
    call_id, recording, voicemail = _on_a_worker(db_url, tmp_path)
    before = _locations(db_url, call_id)
    down = store_at("http://127.0.0.1:9")  # nothing listens there: every request is refused

    failed = await _mover(down, db_url, tmp_path).move_round()

    assert (failed.moved, failed.failed) == (0, 2)
    assert recording.exists() and voicemail.exists() and _locations(db_url, call_id) == before
    assert objects(s3) == {}
    done = await _mover(s3, db_url, tmp_path).move_round()
    assert done.moved == 2 and len(objects(s3)) == 2 and not recording.exists()


async def test_audio_no_row_names_waits_for_its_row_or_goes_once_its_call_ended_long_ago(
    db_url: str, tmp_path: Path, s3
) -> None:
    # a call still going on (no row yet), one that ended a minute ago and one that ended two hours ago,
    # neither of which names its file any more (erased where this disk is not, or never linked)
    (tmp_path / "recordings").mkdir()
    ongoing = tmp_path / "recordings" / f"{uuid.uuid4()}.ogg"
    ongoing.write_bytes(b"OggS")
    recent, recent_file, _ = _on_a_worker(db_url, tmp_path, at=NOW - timedelta(minutes=1, seconds=95))
    old, old_file, _ = _on_a_worker(db_url, tmp_path, caller=SAM, at=NOW - timedelta(hours=2))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE calls SET recording_path = NULL WHERE id = ANY(%s)", ([recent, old],))
        conn.execute("UPDATE messages SET audio_path = NULL WHERE call_id = ANY(%s)", ([recent, old],))

    done = await _mover(s3, db_url, tmp_path).move_round()

    assert (done.moved, done.waiting, done.orphans_deleted) == (0, 3, 2)
    assert ongoing.exists() and recent_file.exists() and not old_file.exists()
    assert objects(s3) == {}


async def test_forget_and_retention_delete_the_objects_where_they_are(db_url: str, tmp_path: Path, s3) -> None:
    dana, _, _ = _on_a_worker(db_url, tmp_path)
    old, _, _ = _on_a_worker(db_url, tmp_path, caller=SAM, at=NOW - timedelta(days=40))
    kept, _, _ = _on_a_worker(db_url, tmp_path, caller=SAM)
    await _mover(s3, db_url, tmp_path).move_round()
    assert len(objects(s3)) == 6

    erased = await forget(db_url, DANA, requested_by="alice", audio=s3)
    swept = await sweep(db_url, [RetentionPolicy(PLUMBING, 30)], audio=s3)

    assert erased.counts["recordings"] == {"deleted": 1} and erased.counts["voicemails"] == {"deleted": 1}
    assert swept.counts[PLUMBING]["recordings"] == {"deleted": 1}
    assert swept.counts[PLUMBING]["voicemails"] == {"deleted": 1}
    assert sorted(objects(s3)) == [f"rose-city/recordings/{kept}.ogg", f"rose-city/voicemails/{kept}.wav"]
    for call_id in (dana, old):
        assert _locations(db_url, call_id) == (None, None)


async def test_forget_or_retention_where_the_bucket_is_not_set_change_nothing(db_url: str, tmp_path: Path, s3) -> None:
    dana, _, _ = _on_a_worker(db_url, tmp_path)
    await _mover(s3, db_url, tmp_path).move_round()
    before = _locations(db_url, dana)
    elsewhere = store_at(s3._options["endpoint_url"], "s3://other-bucket")

    for audio in (None, elsewhere):  # AUDIO_BUCKET not set where it runs, or another bucket
        with pytest.raises(AudioUnreachable, match="set AUDIO_BUCKET.*nothing was changed"):
            await forget(db_url, DANA, requested_by="alice", audio=audio)
        with pytest.raises(AudioUnreachable, match="nothing was changed"):
            await sweep(db_url, [RetentionPolicy(PLUMBING, 0)], audio=audio)

    # no row stopped leading to her voice, which is still stored; and the day's retention is unclaimed
    assert _locations(db_url, dana) == before and len(objects(s3)) == 2
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM retention_runs").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM erasures").fetchone() == (0,)


async def test_a_voicemail_an_older_worker_named_in_its_text_only_is_moved(db_url: str, tmp_path: Path, s3) -> None:
    call_id, _, voicemail = _on_a_worker(db_url, tmp_path)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE messages SET audio_path = NULL, body = body || ': ' || %s WHERE call_id = %s"
                     " AND audio_path IS NOT NULL", (str(voicemail.resolve()), call_id))  # fmt: skip

    await _mover(s3, db_url, tmp_path).move_round()

    assert _locations(db_url, call_id)[1] == f"s3://{BUCKET}/rose-city/voicemails/{call_id}.wav"
    assert not voicemail.exists()


# what happens to the row just as its recording has been stored
AS_IT_IS_STORED = {
    # `forget` runs elsewhere: the object goes with the row
    "erased": ("UPDATE calls SET recording_path = NULL WHERE id = %(id)s", False),
    # another worker process on this disk stored it and named it just before: the object stays
    "named by another mover": ("UPDATE calls SET recording_path = %(url)s WHERE id = %(id)s", True),
}


@pytest.mark.parametrize("meanwhile", list(AS_IT_IS_STORED))
async def test_a_row_changed_as_its_file_is_stored_decides_whether_the_object_stays(
    db_url: str, tmp_path: Path, s3, monkeypatch: pytest.MonkeyPatch, meanwhile: str
) -> None:
    sql, kept = AS_IT_IS_STORED[meanwhile]
    call_id, recording, _ = _on_a_worker(db_url, tmp_path)
    _once_stored(monkeypatch, s3, recording, db_url, sql, call_id)

    await _mover(s3, db_url, tmp_path).move_round()

    key = f"rose-city/recordings/{call_id}.ogg"
    assert (key in objects(s3)) is kept and not recording.exists()
    assert _locations(db_url, call_id)[0] == (f"s3://{BUCKET}/{key}" if kept else None)
    assert f"rose-city/voicemails/{call_id}.wav" in objects(s3)


@pytest.mark.parametrize("url", ["s3://call-audio", "s3://call-audio/", "s3://call-audio/rose/city/"])
def test_a_bucket_is_written_as_an_s3_url(url: str) -> None:
    bucket = AudioBucket.parse(url)
    assert bucket.name == "call-audio" and bucket.prefix in ("", "rose/city/")
    assert bucket.key_of(bucket.url(bucket.key("recordings", "a.ogg"))) == bucket.key("recordings", "a.ogg")
    assert bucket.key_of("s3://other-bucket/recordings/a.ogg") is None


@pytest.mark.parametrize("url", ["http://call-audio", "call-audio", "s3://", "s3://Call_Audio", "s3://ab"])
def test_anything_else_is_refused_by_name(url: str) -> None:
    with pytest.raises(AudioBucketInvalid):
        AudioBucket.parse(url)
    with pytest.raises(SettingsError, match="AUDIO_BUCKET: .*s3://bucket"):
        load_settings(openai_api_key="sim", audio_bucket=url, _env_file=None)


async def test_a_worker_with_a_bucket_moves_its_audio_from_its_start(db_url: str, tmp_path: Path, s3) -> None:
    """The worker's main process runs the mover (and one without AUDIO_BUCKET does not)."""
    import asyncio

    from agent.worker import build_server

    call_id, recording, voicemail = _on_a_worker(db_url, tmp_path)
    endpoint = s3._options["endpoint_url"]
    settings = load_settings(
        openai_api_key="sim", database_url=db_url, audio_bucket=f"s3://{BUCKET}/rose-city", s3_endpoint_url=endpoint,
        s3_region="us-east-1", s3_access_key_id="test-key", s3_secret_access_key="test-secret",
        recordings_dir=tmp_path / "recordings", voicemail_dir=tmp_path / "voicemail", _env_file=None,
    )  # fmt: skip
    assert build_server("receptionist", load_settings(openai_api_key="sim", _env_file=None))._move_call_audio() is None
    moving = build_server("receptionist", settings)._move_call_audio()
    assert moving is not None
    try:
        for _ in range(100):
            if not recording.exists() and not voicemail.exists():
                break
            await asyncio.sleep(0.1)
    finally:
        moving.cancel()
    assert len(objects(s3)) == 2 and _locations(db_url, call_id)[0] == f"s3://{BUCKET}/rose-city/recordings/{call_id}.ogg"
