-- A reversal receipt (undo-*) is countersigned only after an earlier receipt of the same kind,
-- actor, object and beneficiary, once, and for no more points than it: found by this index.
CREATE INDEX rewards_receipts_pair ON rewards_receipts (actor_uri, object_uri) WHERE role = 'counterparty';
