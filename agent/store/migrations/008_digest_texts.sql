-- Texts to callers (README "Notifications"): the caller's answer when the agent asked whether they want
-- their confirmation by text, and the numbers that texted STOP. Opt-outs are a suppression list, not a
-- caller's record: retention and `receptionist forget` keep them, or a forgotten number would be texted again.

-- the answer given on the call that last booked, moved or cancelled the appointment:
-- NULL = not asked (or booked before this migration), true = agreed, false = declined
ALTER TABLE appointments
    ADD COLUMN IF NOT EXISTS text_consent boolean,
    ADD COLUMN IF NOT EXISTS text_consent_at timestamptz;

-- a number that texted STOP (or UNSUBSCRIBE, ...) to one of our numbers gets no more texts from it, as
-- Twilio itself blocks; START removes the row. Every SMS send checks it (agent/notify/channels.py).
CREATE TABLE IF NOT EXISTS sms_opt_outs (
    phone           text        NOT NULL,  -- who opted out (Twilio's From), E.164
    business_number text        NOT NULL,  -- the number they texted (Twilio's To), E.164
    keyword         text        NOT NULL,  -- what they sent, upper-cased: STOP, UNSUBSCRIBE, ...
    opted_out_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (phone, business_number)
);
