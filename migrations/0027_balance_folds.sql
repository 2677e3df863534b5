-- Saved balance folds (issue #11): a checkpoint of each busy account's running fold, so the
-- first balance query after a start reads one row plus the log's index rows appended since,
-- not the account's whole history.
--
-- `state` is rewards.balance_state.FoldState.to_bytes() over the log's first `log_size`
-- entries; `policy_key` is rewards.balance_state.policy_key() of the token and endorsement
-- policies (and the format) it was folded under: a row under another key is ignored and the
-- account folded again. `last_leaf_sha256` is sha256 of entry `log_size - 1`'s leaf: a log cut
-- and grown again under it makes the row stale (ignored). Written by rewards.minting.BalanceCache
-- after it absorbed enough new entries; a cache, never a source of truth: deleting rows (or
-- all of them) only makes the next queries slower.
CREATE TABLE reward_balance_folds (
    account          text PRIMARY KEY,
    log_size         bigint NOT NULL CHECK (log_size > 0),
    last_leaf_sha256 bytea NOT NULL,
    policy_key       text NOT NULL,
    state            bytea NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- Mostly 16-byte hashes: not worth compressing; read whole at each load.
ALTER TABLE reward_balance_folds ALTER COLUMN state SET STORAGE EXTERNAL;
