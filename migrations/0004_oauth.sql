-- The Mastodon client API: OAuth applications, authorization codes and access tokens
-- (secrets stored only as SHA-256 digests), API rate-limit counters, failed logins,
-- timeline markers and posting preferences.

CREATE TABLE oauth_apps (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL CHECK (name <> ''),
    website         text,
    redirect_uris   text[] NOT NULL CHECK (cardinality(redirect_uris) > 0),
    scopes          text NOT NULL,
    client_id       text NOT NULL UNIQUE,
    secret_hash     bytea NOT NULL CHECK (length(secret_hash) = 32),
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Single use: `used_at` is set by the exchange that consumes the code, and only once.
CREATE TABLE oauth_codes (
    code_hash       bytea PRIMARY KEY CHECK (length(code_hash) = 32),
    app_id          bigint NOT NULL REFERENCES oauth_apps (id) ON DELETE CASCADE,
    account_id      bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    redirect_uri    text NOT NULL,
    scopes          text NOT NULL,
    code_challenge  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz
);
CREATE INDEX oauth_codes_expires ON oauth_codes (expires_at);

-- account_id is NULL for client-credentials tokens (an app acting for itself).
CREATE TABLE oauth_tokens (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash      bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    app_id          bigint NOT NULL REFERENCES oauth_apps (id) ON DELETE CASCADE,
    account_id      bigint REFERENCES actors (id) ON DELETE CASCADE,
    scopes          text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);
CREATE INDEX oauth_tokens_account ON oauth_tokens (account_id) WHERE revoked_at IS NULL;

-- API requests per key (token or address) per fixed window; one UPSERT per request, so
-- every web process sees the same counts.
CREATE TABLE api_rate_limits (
    bucket          text NOT NULL,
    window_start    timestamptz NOT NULL,
    hits            integer NOT NULL CHECK (hits > 0),
    PRIMARY KEY (bucket, window_start)
);
CREATE INDEX api_rate_limits_window ON api_rate_limits (window_start);

-- Login attempts, one row per key (address, account) charged before the password is
-- checked; a successful login removes its own rows, so what stays are failures.
CREATE TABLE login_failures (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key             text NOT NULL,
    failed_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_key ON login_failures (key, failed_at);

-- Where a person stopped reading their home timeline and notifications.
CREATE TABLE timeline_markers (
    account_id      bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    timeline        text NOT NULL CHECK (timeline IN ('home', 'notifications')),
    last_read_id    text NOT NULL CHECK (length(last_read_id) BETWEEN 1 AND 64),
    version         integer NOT NULL DEFAULT 1,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, timeline)
);

-- Posting defaults and reading preferences; no row means Mastodon's defaults.
CREATE TABLE account_preferences (
    account_id      bigint PRIMARY KEY REFERENCES actors (id) ON DELETE CASCADE,
    posting_visibility text NOT NULL DEFAULT 'public'
                    CHECK (posting_visibility IN ('public', 'unlisted', 'private', 'direct')),
    posting_sensitive boolean NOT NULL DEFAULT false,
    posting_language text CHECK (posting_language ~ '^[a-z]{2,3}$'),
    expand_media    text NOT NULL DEFAULT 'default' CHECK (expand_media IN ('default', 'show_all', 'hide_all')),
    expand_spoilers boolean NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
