-- The carrier's STIR/SHAKEN verdict on the caller ID (e.g. TN-Validation-Passed-A), as Twilio passed
-- it: what the caller ID was worth on this call. NULL when the INVITE carried none.
ALTER TABLE calls ADD COLUMN IF NOT EXISTS caller_verstat text;
