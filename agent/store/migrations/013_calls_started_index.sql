-- The operator's Calls list (every business, newest first) walks this index and stops at a page,
-- instead of sorting every call; an owner's list uses calls_business_started_idx the same way.
CREATE INDEX IF NOT EXISTS calls_started_idx ON calls (started_at DESC);
