-- A call its caller hung up was recorded with LiveKit's name for why the session closed,
-- "participant_disconnected", and now and then "user_initiated" when LiveKit's room closed first;
-- the call report (hung_up_during_greeting) and the owner's figures (hung up after the greeting) look
-- for "caller_hangup", which only tests ever wrote. Calls from now on say "caller_hangup" (or
-- "line_lost: <reason>" when the caller's leg went another way, "job_shutdown" when LiveKit ended the
-- job); the calls recorded before say it too. "user_initiated" cannot tell such a hang-up from a job
-- LiveKit shut down, so those rows say "job_shutdown", the name calls from now on give the latter.
-- The flags in their reports stay as they were written.
UPDATE calls SET end_reason = 'caller_hangup',
                 summary = CASE WHEN summary ? 'end_reason'
                                THEN jsonb_set(summary, '{end_reason}', '"caller_hangup"') ELSE summary END
 WHERE end_reason = 'participant_disconnected';
UPDATE calls SET end_reason = 'job_shutdown',
                 summary = CASE WHEN summary ? 'end_reason'
                                THEN jsonb_set(summary, '{end_reason}', '"job_shutdown"') ELSE summary END
 WHERE end_reason = 'user_initiated';
