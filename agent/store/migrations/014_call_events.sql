-- Each step a call's flows took (booking, appointment changes, escalation), in order: the call report's
-- funnel and `receptionist report` show where callers drop off. A step names a state, never personal
-- data, so a call's steps go with the call (ON DELETE CASCADE) and need no erasure of their own.
CREATE TABLE call_events (
    id       uuid PRIMARY KEY,
    call_id  uuid        NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    seq      int         NOT NULL,
    flow     text        NOT NULL,
    step     text        NOT NULL,
    refused  text,
    at       timestamptz NOT NULL,
    UNIQUE (call_id, seq)
);
CREATE INDEX call_events_flow_idx ON call_events (flow, step);
