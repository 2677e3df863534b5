-- One shape for every job table, and tables that stop growing forever:
-- inbox items get `last_status` like the other queues; finished inbox items and deliveries
-- are found by age for pruning; a delivered body is stored once per activity instead of
-- once per inbox; the Follow a local account answers lives on the follow, not only in the
-- inbox archive. Plus the indexes that cascading deletes and hot lookups were missing.

ALTER TABLE inbox_items ADD COLUMN last_status integer;
CREATE INDEX inbox_items_finished ON inbox_items (finished_at) WHERE state <> 'queued';

CREATE TABLE delivery_bodies (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    activity_uri    text NOT NULL UNIQUE,
    body            jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO delivery_bodies (activity_uri, body, created_at)
SELECT DISTINCT ON (activity_uri) activity_uri, body, created_at FROM deliveries ORDER BY activity_uri, id;
ALTER TABLE deliveries ADD COLUMN body_id bigint REFERENCES delivery_bodies (id);
UPDATE deliveries d SET body_id = b.id FROM delivery_bodies b WHERE b.activity_uri = d.activity_uri;
ALTER TABLE deliveries ALTER COLUMN body_id SET NOT NULL;
ALTER TABLE deliveries DROP COLUMN body;
CREATE INDEX deliveries_body ON deliveries (body_id);
CREATE INDEX deliveries_finished ON deliveries (finished_at) WHERE state <> 'queued';
CREATE INDEX delivery_bodies_created ON delivery_bodies (created_at);

-- The Follow as received, embedded as-is in our Accept or Reject (Mastodon matches it by id).
ALTER TABLE follows ADD COLUMN activity jsonb;
UPDATE follows f SET activity = i.body
FROM inbox_items i WHERE i.activity_uri = f.activity_uri AND i.activity_type = 'Follow';

-- Undoing a like, boost or follow deletes its notifications through these foreign keys.
CREATE INDEX notifications_like ON notifications (like_id) WHERE like_id IS NOT NULL;
CREATE INDEX notifications_announce ON notifications (announce_id) WHERE announce_id IS NOT NULL;
CREATE INDEX notifications_follow ON notifications (follow_id) WHERE follow_id IS NOT NULL;
CREATE INDEX notifications_object ON notifications (object_id) WHERE object_id IS NOT NULL;
-- Activities about an object (an undo, a delete, an edit); actors by personal inbox (410 Gone).
CREATE INDEX activities_object ON activities (object_uri) WHERE object_uri IS NOT NULL;
CREATE INDEX actors_inbox ON actors (inbox_uri);
