-- Deliveries go out in order per sender and inbox (a line), not per inbox: 0021 held every sender's
-- deliveries to an inbox in one line, so one buyer's Offer waited for every other buyer's.
-- A row queued behind an earlier queued row of its line is `waiting`: the claim's scan skips it (its
-- index leaves it out), and when a row of the line ends, the line's first queued row is released. So a
-- claim reads the rows first in their line, however long the lines are, instead of every queued row.
ALTER TABLE deliveries ADD COLUMN waiting boolean NOT NULL DEFAULT false;
DROP INDEX deliveries_inbox_queue;
CREATE INDEX deliveries_line_queue ON deliveries (inbox_uri, sender_id, id) WHERE state = 'queued';
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'queued' AND NOT waiting;
