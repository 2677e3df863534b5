-- Monitoring checks every member log each minute, so a fork that stays raised the same
-- alert again and again, burying the admin page. An unresolved alert is now kept once:
-- repeats count in `seen` and move `last_seen_at`. Once resolved, the next occurrence
-- raises a new alert.

ALTER TABLE rewards_alerts
    ADD COLUMN seen integer NOT NULL DEFAULT 1 CHECK (seen > 0),
    ADD COLUMN last_seen_at timestamptz;
UPDATE rewards_alerts SET last_seen_at = created_at;

-- Fold the repeats already recorded into the first of each.
WITH repeated AS (
    SELECT min(id) AS keep, count(*) AS seen, max(created_at) AS last_seen_at
    FROM rewards_alerts WHERE resolved_at IS NULL
    GROUP BY origin, kind, message HAVING count(*) > 1
)
UPDATE rewards_alerts r SET seen = x.seen, last_seen_at = x.last_seen_at FROM repeated x WHERE r.id = x.keep;
DELETE FROM rewards_alerts r USING rewards_alerts k
WHERE r.resolved_at IS NULL AND k.resolved_at IS NULL
  AND k.origin = r.origin AND k.kind = r.kind AND k.message = r.message AND k.id < r.id;

ALTER TABLE rewards_alerts
    ALTER COLUMN last_seen_at SET NOT NULL,
    ALTER COLUMN last_seen_at SET DEFAULT now();
CREATE UNIQUE INDEX rewards_alerts_unresolved ON rewards_alerts (origin, kind, md5(message))
    WHERE resolved_at IS NULL;
