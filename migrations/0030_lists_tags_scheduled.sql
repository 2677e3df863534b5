-- Lists, followed hashtags and scheduled statuses of local people (Mastodon's client API).

-- A list of accounts its owner follows, with its own timeline. `replies_policy` says which replies
-- the list timeline shows (Mastodon's: to anyone followed, to list members, none); an `exclusive`
-- list keeps its members' posts out of the owner's home timeline.
CREATE TABLE lists (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id      bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    title           text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 200),
    replies_policy  text NOT NULL DEFAULT 'list' CHECK (replies_policy IN ('followed', 'list', 'none')),
    exclusive       boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lists_account ON lists (account_id, id);

-- A member is someone the owner follows (or asked to follow): the row hangs on the follow, so an
-- unfollow takes the account out of the owner's lists, as Mastodon's ListAccount does.
CREATE TABLE list_accounts (
    list_id         bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    account_id      bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    follow_id       bigint NOT NULL REFERENCES follows (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list_id, account_id)
);
CREATE INDEX list_accounts_account ON list_accounts (account_id);
CREATE INDEX list_accounts_follow ON list_accounts (follow_id);

-- Hashtags a local person follows: new public posts carrying one are fanned out to that person's home
-- timeline when stored (repo/home_feed.py), looked up by tag.
CREATE TABLE followed_tags (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id      bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    tag_id          bigint NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tag_id, account_id)
);
CREATE INDEX followed_tags_account ON followed_tags (account_id, id DESC);

-- POST /api/v1/statuses with `scheduled_at`: the parameters wait here until a worker claims the due
-- row (FOR UPDATE SKIP LOCKED), posts it and deletes the row in one transaction, so it posts once.
CREATE TABLE scheduled_statuses (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id      bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    scheduled_at    timestamptz NOT NULL,
    params          jsonb NOT NULL,
    media_ids       bigint[] NOT NULL DEFAULT '{}',
    app_id          bigint REFERENCES oauth_apps (id) ON DELETE SET NULL,
    idempotency_key text CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scheduled_statuses_due ON scheduled_statuses (scheduled_at, id);
CREATE INDEX scheduled_statuses_account ON scheduled_statuses (account_id, id DESC);
CREATE UNIQUE INDEX scheduled_statuses_idempotency ON scheduled_statuses (account_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
