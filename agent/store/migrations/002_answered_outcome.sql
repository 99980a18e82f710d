-- A call where the caller got what they asked for without a booking, lead or message (a question
-- answered, an appointment cancelled) ends as 'answered', not 'abandoned'.
ALTER TABLE calls DROP CONSTRAINT IF EXISTS calls_outcome_check;
ALTER TABLE calls ADD CONSTRAINT calls_outcome_check
    CHECK (outcome IN ('booked', 'lead', 'message', 'escalated', 'answered', 'abandoned', 'error'));
