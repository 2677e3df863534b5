-- Sessions serve every area of the site, not only /admin: the owner dashboard and the
-- buyer pages (path /, any local account) log in the same way. A session belongs to
-- the one area it was started in (`area`) and opens no other, so an admin cookie never
-- opens the dashboard and a dashboard cookie never opens /admin. The sessions that
-- exist are admin sessions.

ALTER TABLE admin_sessions RENAME TO sessions;
ALTER SEQUENCE admin_sessions_id_seq RENAME TO sessions_id_seq;
ALTER TABLE sessions RENAME CONSTRAINT admin_sessions_pkey TO sessions_pkey;
ALTER TABLE sessions RENAME CONSTRAINT admin_sessions_token_hash_key TO sessions_token_hash_key;
ALTER TABLE sessions RENAME CONSTRAINT admin_sessions_token_hash_check TO sessions_token_hash_check;
ALTER TABLE sessions RENAME CONSTRAINT admin_sessions_account_id_fkey TO sessions_account_id_fkey;
ALTER INDEX admin_sessions_expires RENAME TO sessions_expires;

-- The default only labels the rows already there; every new session names its area.
ALTER TABLE sessions ADD COLUMN area text NOT NULL DEFAULT 'admin'
    CONSTRAINT sessions_area_check CHECK (area ~ '^[a-z][a-z0-9_]{0,31}$');
ALTER TABLE sessions ALTER COLUMN area DROP DEFAULT;

-- Ending an account's sessions in one area (demoting an administrator).
CREATE INDEX sessions_account_live ON sessions (account_id, area) WHERE ended_at IS NULL;
