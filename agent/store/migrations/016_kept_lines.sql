-- The brain's fixed lines in the model's own voice (agent/kept_greeting.py, agent/voiced_lines.py),
-- kept for the whole fleet: the greeting as a call heard it, and the greeting and the model-down lines
-- (hold, transfer, message, goodbye) read by the model when a worker starts. A replica that has not
-- answered a brain's call yet, or a pod whose disk went with it, plays these instead of asking the
-- model, and the model-free path speaks in the same voice as the rest of the call. No caller is in it:
-- the brain's words in the model's voice. `key` is the digest of the words, the model and the voice
-- (the file name under GREETING_AUDIO_DIR).
CREATE TABLE kept_lines (
    key      text PRIMARY KEY,
    text     text NOT NULL,
    model    text NOT NULL,
    voice    text NOT NULL,
    rate     integer NOT NULL CHECK (rate BETWEEN 8000 AND 48000),
    pcm      bytea NOT NULL CHECK (length(pcm) > 0 AND length(pcm) % 2 = 0),  -- PCM16 mono
    kept_at  timestamptz NOT NULL DEFAULT now()
);
