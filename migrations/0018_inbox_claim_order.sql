-- The inbox is claimed oldest first by id (a sender's activities in arrival order). With only
-- an index on next_attempt_at, each claim during a backlog sorted every queued row (or walked
-- the primary key past every finished one): about 30 ms per claim with 40,000 queued, most of
-- the database's time while draining. Walking this index, a claim reads the rows it takes and
-- the few leased or waiting for a retry ahead of them. Nothing else reads the inbox by
-- next_attempt_at, so that index goes.
CREATE INDEX inbox_items_queued ON inbox_items (id) WHERE state = 'queued';
DROP INDEX inbox_items_ready;
