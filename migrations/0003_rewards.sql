-- Rewards: the instance's keys, its append-only Merkle log (entries, tiles, sequencing
-- and integration state, checkpoints), the receipts index and outbound receipt
-- deliveries, the witness state of member logs, evidence, monitoring heads and alerts.

-- Three Ed25519 keys per instance, by C2SP key name (<domain>/rewards/receipts,
-- <domain>/rewards/v1, <domain>/rewards/witness). Seeds never leave the database.
CREATE TABLE rewards_keys (
    name            text PRIMARY KEY,
    role            text NOT NULL CHECK (role IN ('receipts', 'log', 'witness')),
    seed            bytea NOT NULL CHECK (length(seed) = 32),
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Member instances whose receipt keys we pinned (`fedserver rewards peer add`).
-- Their log and witness keys live in the tlog-policy file.
CREATE TABLE rewards_members (
    domain          text PRIMARY KEY,
    base_url        text NOT NULL,
    receipts_vkey   text NOT NULL,
    log_vkey        text NOT NULL,
    witness_vkey    text NOT NULL,
    added_at        timestamptz NOT NULL DEFAULT now()
);

-- Sequencing: one row, locked by `UPDATE ... SET next_index = next_index + n` in the
-- appending transaction, so indices are handed out in commit order and a rollback
-- gives its indices back (no gaps, never reused once committed).
CREATE TABLE rewards_log_seq (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    next_index      bigint NOT NULL DEFAULT 0 CHECK (next_index >= 0)
);
INSERT INTO rewards_log_seq DEFAULT VALUES;

-- Log entries (leaves): the exact bytes that are hashed into the tree.
CREATE TABLE rewards_log_entries (
    idx             bigint PRIMARY KEY CHECK (idx >= 0),
    leaf            bytea NOT NULL CHECK (length(leaf) <= 65535),
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- tlog tiles (level >= 0): up to 256 concatenated hashes; a partial tile is
-- overwritten by a wider one as the tree grows (the first W hashes never change).
CREATE TABLE rewards_log_tiles (
    level           smallint NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx             bigint NOT NULL CHECK (idx >= 0),
    width           smallint NOT NULL CHECK (width BETWEEN 1 AND 256),
    hashes          bytea NOT NULL CHECK (length(hashes) = 32 * width),
    PRIMARY KEY (level, idx)
);

-- Integration and publication state: one row. tree_* is what the integrator built;
-- signed_* the latest checkpoint signed by the log key; published_* the latest one
-- that reached the witness quorum (served at /rewards/log/checkpoint).
CREATE TABLE rewards_log_state (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    tree_size       bigint NOT NULL DEFAULT 0 CHECK (tree_size >= 0),
    tree_root       bytea NOT NULL DEFAULT sha256(''::bytea),
    signed_size     bigint CHECK (signed_size <= tree_size),
    signed_checkpoint bytea,
    published_size  bigint CHECK (published_size <= signed_size),
    published_checkpoint bytea,
    published_at    timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO rewards_log_state DEFAULT VALUES;

-- Receipts in our log (issued or countersigned by us), indexed by their unique id.
CREATE TABLE rewards_receipts (
    receipt_id      text PRIMARY KEY,
    idx             bigint NOT NULL UNIQUE REFERENCES rewards_log_entries (idx),
    kind            text NOT NULL,
    actor_uri       text NOT NULL,
    object_uri      text NOT NULL,
    beneficiary_uri text NOT NULL,
    points          bigint NOT NULL,
    issued_at       timestamptz NOT NULL,
    role            text NOT NULL CHECK (role IN ('issuer', 'counterparty'))
);
CREATE INDEX rewards_receipts_beneficiary ON rewards_receipts (beneficiary_uri, idx);

-- Points handed out per actor per UTC day, for the daily cap.
CREATE TABLE rewards_actor_days (
    actor_uri       text NOT NULL,
    day             date NOT NULL,
    points          bigint NOT NULL CHECK (points >= 0),
    PRIMARY KEY (actor_uri, day)
);

-- Receipts we issued, waiting for the beneficiary's instance to countersign them.
CREATE TABLE rewards_receipt_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    receipt_id      text NOT NULL UNIQUE,
    target_domain   text NOT NULL,
    target_url      text NOT NULL,
    body            bytea NOT NULL,
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    last_status     integer,
    last_error      text,
    log_index       bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX rewards_receipt_deliveries_ready ON rewards_receipt_deliveries (next_attempt_at)
    WHERE state = 'queued';

-- Witness: the latest checkpoint we cosigned per member log, replaced only by
-- compare-and-swap on the stored size and root.
CREATE TABLE rewards_witness_state (
    origin          text PRIMARY KEY,
    size            bigint NOT NULL CHECK (size >= 0),
    root            bytea NOT NULL CHECK (length(root) = 32),
    checkpoint      bytea NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Signed requests a witness refused, and inconsistent checkpoints seen by monitors:
-- transferable proof of a log's misbehaviour.
CREATE TABLE rewards_evidence (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    origin          text NOT NULL,
    kind            text NOT NULL,
    reason          text NOT NULL,
    body            bytea NOT NULL,
    known_checkpoint bytea,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rewards_evidence_origin ON rewards_evidence (origin, id);
-- The same refused request is kept once, however often it is replayed.
CREATE UNIQUE INDEX rewards_evidence_once ON rewards_evidence (origin, kind, sha256(body));

-- The latest checkpoint this instance verified for each log (monitor and verify).
CREATE TABLE rewards_peer_heads (
    origin          text PRIMARY KEY,
    size            bigint NOT NULL CHECK (size >= 0),
    root            bytea NOT NULL CHECK (length(root) = 32),
    checkpoint      bytea NOT NULL,
    checked_at      timestamptz NOT NULL DEFAULT now()
);

-- Alerts for administrators: forks, rewrites, truncations.
CREATE TABLE rewards_alerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    origin          text NOT NULL,
    kind            text NOT NULL,
    message         text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz
);
