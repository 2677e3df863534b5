-- Reversing receipts for receipts that are not countersigned yet.
--
-- An undo-like or undo-announce reverses the receipt of the like or announce. That
-- receipt may still wait in rewards_receipt_deliveries (the beneficiary's instance is
-- down), so each delivery now records what its receipt says (kind, actor, object,
-- points) and a reversal names the delivery it reverses. A reversal is sent only after
-- that delivery is countersigned, and fails unsent if it is refused for good
-- (rewards/store.py: claim_receipt_deliveries, mark_receipt_failed).

ALTER TABLE rewards_receipt_deliveries
    ADD COLUMN kind         text,
    ADD COLUMN actor_uri    text,
    ADD COLUMN object_uri   text,
    ADD COLUMN points       bigint,
    ADD COLUMN reverses     bigint REFERENCES rewards_receipt_deliveries (id);

-- Deliveries queued or sent before this migration: read the fields back from the
-- signed receipt text (rewards/receipt/v1, one "key value" line per field).
UPDATE rewards_receipt_deliveries d SET
    kind = substring(t.text FROM E'\nkind ([^\n]+)\n'),
    actor_uri = substring(t.text FROM E'\nactor ([^\n]+)\n'),
    object_uri = substring(t.text FROM E'\nobject ([^\n]+)\n'),
    points = substring(t.text FROM E'\npoints (-?[0-9]+)\n')::bigint
FROM (SELECT id, convert_from(body, 'UTF8') AS text FROM rewards_receipt_deliveries) t
WHERE t.id = d.id;

-- An earlier reversal reversed the receipt of the interaction just before it; when two
-- point at the same one, the first keeps it (the unique index below allows one).
WITH candidates AS (
    SELECT u.id, (SELECT o.id FROM rewards_receipt_deliveries o
                  WHERE o.kind = substr(u.kind, 6) AND o.actor_uri = u.actor_uri
                    AND o.object_uri = u.object_uri AND o.id < u.id
                  ORDER BY o.id DESC LIMIT 1) AS original
    FROM rewards_receipt_deliveries u WHERE u.kind LIKE 'undo-%'
), firsts AS (
    SELECT DISTINCT ON (original) id, original FROM candidates WHERE original IS NOT NULL ORDER BY original, id
)
UPDATE rewards_receipt_deliveries d SET reverses = f.original FROM firsts f WHERE d.id = f.id;

ALTER TABLE rewards_receipt_deliveries
    ALTER COLUMN kind SET NOT NULL,
    ALTER COLUMN actor_uri SET NOT NULL,
    ALTER COLUMN object_uri SET NOT NULL,
    ALTER COLUMN points SET NOT NULL;

-- The receipt an undo reverses: the newest one of the same interaction.
CREATE INDEX rewards_receipt_deliveries_interaction
    ON rewards_receipt_deliveries (actor_uri, object_uri, kind, id);
-- One reversal per receipt; also finds the reversals waiting for a receipt.
CREATE UNIQUE INDEX rewards_receipt_deliveries_reverses
    ON rewards_receipt_deliveries (reverses) WHERE reverses IS NOT NULL;
