-- A key id belongs to exactly one actor. Before this, an actor document could claim another
-- actor's key id and the lookup by key id took whichever row came first. Where rows share a
-- key id, the one whose id the key id is under (the actor document itself, `{actor}#...` or
-- `{actor}/...`) keeps it, else the most recently fetched one; the others get an unusable key
-- id and are fetched again when next met.
WITH ranked AS (
    SELECT id, row_number() OVER (
               PARTITION BY key_id
               ORDER BY is_local DESC,
                        (key_id = uri OR key_id LIKE uri || '#%' OR key_id LIKE uri || '/%') DESC,
                        fetched_at DESC NULLS LAST, id) AS n
    FROM actors)
UPDATE actors a SET key_id = 'invalid:' || a.id
FROM ranked r WHERE r.id = a.id AND r.n > 1;

DROP INDEX actors_key_id;
CREATE UNIQUE INDEX actors_key_id ON actors (key_id);
