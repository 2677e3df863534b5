-- Deliveries to one inbox go out in the order they were queued: a queued row is claimable only when
-- no earlier queued row to the same inbox exists. This index answers that question per candidate.
CREATE INDEX deliveries_inbox_queue ON deliveries (inbox_uri, id) WHERE state = 'queued';
