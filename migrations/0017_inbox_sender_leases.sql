-- One sender's inbox items are leased to one worker at a time, so that several worker
-- processes keep a sender's activities in order (each worker runs its own claims of a sender
-- one after another). `claimed_by` names the worker that holds a row's lease; a claim skips
-- senders with a live lease held by another worker, found through this small index of the
-- rows leased right now.
ALTER TABLE inbox_items ADD COLUMN claimed_by text;
CREATE INDEX inbox_items_leased ON inbox_items (actor_uri) WHERE state = 'queued' AND locked_until IS NOT NULL;
