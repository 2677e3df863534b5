-- A direct post is no longer counted in its author's statuses_count (nor moves last_status_at),
-- as in Mastodon (`Status#increment_counter_caches` returns early for direct visibility): the
-- count is public on a profile, and one that climbs with every private message tells everyone
-- that a message was sent. It also keeps the instance account's counter row, which every
-- order notice is authored by, from becoming one row that all order transactions queue on.

CREATE OR REPLACE FUNCTION account_counters_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO account_counters AS c (actor_id, statuses_count, last_status_at)
    SELECT actor_id, count(*), max(published_at) FROM new_rows
    WHERE actor_id IS NOT NULL AND deleted_at IS NULL AND visibility <> 'direct'
    GROUP BY actor_id ORDER BY actor_id
    ON CONFLICT (actor_id) DO UPDATE SET statuses_count = c.statuses_count + EXCLUDED.statuses_count,
        last_status_at = greatest(c.last_status_at, EXCLUDED.last_status_at);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION account_counters_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO account_counters AS c (actor_id, statuses_count)
    SELECT n.actor_id, sum(CASE WHEN n.deleted_at IS NULL THEN 1 ELSE -1 END)
    FROM old_rows o JOIN new_rows n ON n.id = o.id
    WHERE n.actor_id IS NOT NULL AND n.visibility <> 'direct' AND (o.deleted_at IS NULL) <> (n.deleted_at IS NULL)
    GROUP BY n.actor_id ORDER BY n.actor_id
    ON CONFLICT (actor_id) DO UPDATE SET statuses_count = c.statuses_count + EXCLUDED.statuses_count;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION account_counters_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE account_counters c SET statuses_count = c.statuses_count - d.n
    FROM (SELECT actor_id, count(*) AS n FROM old_rows WHERE deleted_at IS NULL AND visibility <> 'direct'
          GROUP BY actor_id) d
    WHERE c.actor_id = d.actor_id;
    RETURN NULL;
END $$;

-- Direct posts counted so far are taken out again.
UPDATE account_counters c SET statuses_count = greatest(c.statuses_count - d.n, 0)
FROM (SELECT actor_id, count(*) AS n FROM objects
      WHERE actor_id IS NOT NULL AND deleted_at IS NULL AND visibility = 'direct' GROUP BY actor_id) d
WHERE c.actor_id = d.actor_id;
