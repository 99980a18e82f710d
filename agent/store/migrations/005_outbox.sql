-- The outbox: every notification to the outside world (email, SMS, webhook) is first a row here,
-- written by the call journal where its cause is recorded, then delivered by `receptionist notify run`.
-- `key` is the idempotency key (call id, kind, channel, destination): a replayed journal inserts nothing
-- twice, and receivers see it as the message's id. No FK to calls: a notification may outlive its call.

CREATE TABLE outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- what `receptionist outbox retry` takes
    key             text        NOT NULL UNIQUE,
    business        text        NOT NULL,
    call_id         uuid,
    kind            text        NOT NULL,
    channel         text        NOT NULL CHECK (channel IN ('email', 'sms', 'webhook')),
    destination     text        NOT NULL,
    payload         jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
    attempts        int         NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL,
    sent_at         timestamptz
);
-- the senders' claim query reads only due, pending rows
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_call_idx ON outbox (call_id) WHERE call_id IS NOT NULL;

-- one row per delivery attempt, successful (error NULL) or not: what an operator reads to see why
CREATE TABLE outbox_attempts (
    outbox_id   bigint      NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    attempt     int         NOT NULL,
    sender      text        NOT NULL,
    started_at  timestamptz NOT NULL,
    duration_ms double precision NOT NULL,
    error       text,
    PRIMARY KEY (outbox_id, attempt)
);
