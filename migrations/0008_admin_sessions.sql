-- The admin pages (/admin): sessions, and who resolved a rewards alert.
--
-- The session cookie holds a random token; the database keeps only its SHA-256
-- digest. A session ends at logout or at expires_at; it lets its account in only
-- while that account is a live administrator (checked on every request).

CREATE TABLE admin_sessions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash      bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    account_id      bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    ended_at        timestamptz
);
CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);

ALTER TABLE rewards_alerts ADD COLUMN resolved_by bigint REFERENCES actors (id) ON DELETE SET NULL;
