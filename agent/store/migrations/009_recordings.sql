-- A call's audio recording (agent/recording.py), when its brain records calls and the caller did not
-- object: the file (RECORDINGS_DIR/<call id>.ogg, caller left, agent right) and its length in seconds.
ALTER TABLE calls
    ADD COLUMN IF NOT EXISTS recording_path text,
    ADD COLUMN IF NOT EXISTS recording_seconds double precision;
