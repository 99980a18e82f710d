-- A voicemail's audio Twilio still holds (agent/notify/twilio_recordings.py): fetched into our keeping,
-- then deleted at Twilio, and tried again later until both are done. A voicemail erased meanwhile
-- (retention, forget) leaves its recording here with no message: it is then only deleted at Twilio,
-- so the caller's voice does not outlive its message there: at once, not at the next try's time.
CREATE TABLE twilio_recordings (
    url        text        PRIMARY KEY,  -- Twilio's RecordingUrl, as its request gave it
    call_sid   text        NOT NULL,
    message_id uuid        REFERENCES messages (id) ON DELETE SET NULL,
    tries      integer     NOT NULL DEFAULT 0,
    next_at    timestamptz NOT NULL DEFAULT now(),
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX twilio_recordings_next_idx ON twilio_recordings (next_at);
CREATE INDEX twilio_recordings_message_idx ON twilio_recordings (message_id);

CREATE FUNCTION twilio_recording_erased() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.next_at := least(OLD.next_at, now());
    RETURN NEW;
END $$;
CREATE TRIGGER twilio_recording_erased BEFORE UPDATE OF message_id ON twilio_recordings FOR EACH ROW
    WHEN (OLD.message_id IS NOT NULL AND NEW.message_id IS NULL) EXECUTE FUNCTION twilio_recording_erased();
