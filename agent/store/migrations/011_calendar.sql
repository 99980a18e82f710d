-- The calendar (README "Calendar"): the owner's ICS feed token, the CalDAV channel in the outbox, and the
-- local copy of the busy times the owner keeps in that calendar, which check_availability reads so that
-- a call never waits on the CalDAV server.

-- bookings, moves and cancellations reach the owner's CalDAV calendar through the outbox like any message
ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_channel_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_channel_check
    CHECK (channel IN ('email', 'sms', 'webhook', 'calendar'));

-- one secret feed URL per business: /calendar/<token>.ics. Kept in clear (not hashed, unlike console
-- sessions) so `receptionist calendar feed-url` can print it again: whoever reads this table reads the
-- appointments the feed shows anyway. Rotating replaces the row, and the old URL is a 404 at once.
CREATE TABLE IF NOT EXISTS calendar_feeds (
    business    text        PRIMARY KEY,
    token       text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- the owner's own events in the CalDAV calendar (not ours), as the last refresh saw them
CREATE TABLE IF NOT EXISTS calendar_busy (
    business    text        NOT NULL,
    event_uid   text        NOT NULL,  -- the event's UID and its start (an occurrence of a recurring one)
    during      tstzrange   NOT NULL,
    summary     text        NOT NULL DEFAULT '',
    PRIMARY KEY (business, event_uid)
);
CREATE INDEX IF NOT EXISTS calendar_busy_during_idx ON calendar_busy USING gist (business, during);

-- how fresh each business's copy is: refreshed_at is the last refresh that reached the server
CREATE TABLE IF NOT EXISTS calendar_sync (
    business       text        PRIMARY KEY,
    refreshed_at   timestamptz,
    failing_since  timestamptz,          -- the first failed refresh since the last good one
    last_error     text,
    -- set by the refresher from its own interval: a copy older than this is stale (its server is down)
    stale_after_s  double precision NOT NULL DEFAULT 120
);
