-- Mutes and user-level domain blocks (Mastodon's semantics). A block (the `blocks` table of 0002) is
-- told to the blocked account's server; a mute and a domain block are the account's own, never sent.

-- A mute hides the target's posts from the account's timelines (and, with `notifications`, its
-- notifications) until `expires_at` (NULL: for good).
CREATE TABLE mutes (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id      bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    target_id       bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    notifications   boolean NOT NULL DEFAULT true,
    expires_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, target_id),
    CHECK (account_id <> target_id)
);
CREATE INDEX mutes_target ON mutes (target_id);

-- A user-level domain block: nothing from that server in the account's timelines or notifications,
-- and its followers there are removed.
CREATE TABLE account_domain_blocks (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id      bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    domain          text NOT NULL CHECK (domain = lower(domain) AND domain <> ''),
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, domain)
);
