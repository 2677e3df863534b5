-- Policy v2 (issue #11): endorsement budgets, per-instance daily quotas, curation receipts.
--
-- Each local account's endorsement budget ("voting mana", rewards/endorse.py), kept by its
-- home instance as it issues receipts: the row is locked by the issuing transaction, so two
-- concurrent likes never spend the same units. Recomputable from our log (rewards/balance.py).
CREATE TABLE rewards_budgets (
    actor_uri       text PRIMARY KEY,
    mana            bigint NOT NULL CHECK (mana >= 0),
    updated_at      bigint NOT NULL CHECK (updated_at >= 0)
);

-- Points credited per UTC day from each instance (the countersigned receipts of a member,
-- and our own same-instance receipts): never past [rewards] instance_daily_quota.
CREATE TABLE rewards_instance_days (
    domain          text NOT NULL,
    day             date NOT NULL,
    points          bigint NOT NULL CHECK (points >= 0),
    PRIMARY KEY (domain, day)
);

-- Who a queued receipt credits, so the reciprocal-pair rule also counts receipts still
-- waiting for their countersignature (NULL for rows queued before policy v2).
ALTER TABLE rewards_receipt_deliveries ADD COLUMN beneficiary_uri text;
CREATE INDEX rewards_receipt_deliveries_actor ON rewards_receipt_deliveries (actor_uri, created_at);

-- A same-instance receipt (actor and author both ours) is signed by us alone and indexed as
-- 'local', as token_spends does for a spend between two accounts of this instance.
ALTER TABLE rewards_receipts DROP CONSTRAINT rewards_receipts_role_check;
ALTER TABLE rewards_receipts ADD CONSTRAINT rewards_receipts_role_check
    CHECK (role IN ('issuer', 'counterparty', 'local'));
