-- A message the caller left as audio (a voicemail taken while the model was unreachable) names its
-- file here, so that erasing the caller's data or the retention sweep deletes the voice with the
-- words, and the owner's console can play it. Before this column the path was only written at the
-- end of the message's body: those messages are read back once, when the path is the worker's file
-- for the message's own call (never a path another message's text happens to end with).
ALTER TABLE messages ADD COLUMN audio_path text;
UPDATE messages SET audio_path = substring(body FROM ': (/.+\.wav)$')
 WHERE audio_path IS NULL AND call_id IS NOT NULL AND body LIKE 'Voicemail (%'
   AND substring(body FROM ': (/.+\.wav)$') LIKE '%/' || call_id::text || '.wav';
