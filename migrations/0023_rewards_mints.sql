-- Mints (issue #11): settled points of a local account converted into whole tokens.
--
-- Each mint is a rewards/mint/v1 entry in our log (rewards/mint.py), indexed here. An
-- account's mints are numbered 1, 2, 3...: the primary key makes a second mint of the
-- same points impossible, whatever runs concurrently or restarts after a kill -9 (the
-- entry and this row commit together or not at all).
CREATE TABLE rewards_mints (
    account_uri     text NOT NULL,
    seq             integer NOT NULL CHECK (seq >= 1),
    idx             bigint NOT NULL UNIQUE REFERENCES rewards_log_entries (idx),
    points          bigint NOT NULL CHECK (points > 0),
    tokens          bigint NOT NULL CHECK (tokens > 0),
    minted_at       timestamptz NOT NULL,
    PRIMARY KEY (account_uri, seq)
);

-- The accounts whose points the mint worker looks at: beneficiaries of receipts.
CREATE INDEX rewards_receipts_actor ON rewards_receipts (actor_uri, idx);
