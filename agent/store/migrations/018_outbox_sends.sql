-- A text's send, committed before Twilio is asked (its Messages API takes no idempotency key): a
-- sender that dies after Twilio took the text and before its own commit leaves this row behind, and
-- the next attempt asks Twilio whether the text is there before sending it again. The attempt's own
-- record (outbox_attempts) replaces it. Senders claim rows FOR NO KEY UPDATE, so this reference never
-- waits for the claim that holds its row.
CREATE TABLE outbox_sends (
    outbox_id  bigint      NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    started_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_sends_outbox_idx ON outbox_sends (outbox_id);
