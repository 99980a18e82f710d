-- The greeting as the model said it (agent/kept_greeting.py), kept for the whole fleet: a replica that
-- has not answered a brain's call yet, or a pod whose disk went with it, plays the greeting another
-- replica kept instead of asking the model. No caller is in it: the brain's words in the model's voice.
-- `key` is the digest of the words, the model and the voice (the file name under GREETING_AUDIO_DIR).
CREATE TABLE kept_greetings (
    key      text PRIMARY KEY,
    text     text NOT NULL,
    model    text NOT NULL,
    voice    text NOT NULL,
    rate     integer NOT NULL CHECK (rate BETWEEN 8000 AND 48000),
    pcm      bytea NOT NULL CHECK (length(pcm) > 0 AND length(pcm) % 2 = 0),  -- PCM16 mono
    kept_at  timestamptz NOT NULL DEFAULT now()
);
