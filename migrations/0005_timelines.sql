-- Timelines, notifications and per-person status state for the client API: one id space for
-- posts and boosts, the home feed written at fan-out, mentions, hashtags, bookmarks, pins,
-- what an author typed, and idempotency keys for posting.

-- Status ids. A post's status id is `objects.id`; a boost's is `announces.id`. Both now come
-- from the same sequence, so one number names exactly one of them and ids sort in the order
-- things arrived (Mastodon clients page by id). Existing boosts are renumbered once.
ALTER TABLE announces ALTER COLUMN id DROP IDENTITY;
ALTER TABLE announces ALTER COLUMN id SET DEFAULT nextval('objects_id_seq');
UPDATE announces SET id = nextval('objects_id_seq');
CREATE INDEX announces_actor ON announces (actor_id, id DESC);
CREATE INDEX likes_actor ON likes (actor_id, id DESC);
CREATE INDEX objects_actor_id ON objects (actor_id, id DESC);
CREATE INDEX objects_public ON objects (id DESC) WHERE visibility = 'public' AND deleted_at IS NULL;
CREATE INDEX objects_public_local ON objects (is_local, id DESC) WHERE visibility = 'public' AND deleted_at IS NULL;

-- A local person's home timeline, written at fan-out in the same transaction that stores the
-- post or boost (local create, inbound Create/Announce), so reading a page is one range scan of
-- the primary key. `entry_id` is the status id shown: the post's objects.id or the boost's
-- announces.id. Rows of deleted posts and undone boosts are skipped when read.
CREATE TABLE home_feed (
    account_id      bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    entry_id        bigint NOT NULL,
    object_id       bigint NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
    author_id       bigint NOT NULL,
    reblog_by       bigint,
    PRIMARY KEY (account_id, entry_id)
);
-- A boost of a post already in the feed is not added again (as Mastodon's FeedManager).
CREATE INDEX home_feed_object ON home_feed (account_id, object_id);

-- Actors a post mentions (local and remote posts), for Status.mentions, direct-message
-- visibility and mention notifications.
CREATE TABLE status_mentions (
    object_id       bigint NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
    actor_id        bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    PRIMARY KEY (object_id, actor_id)
);
CREATE INDEX status_mentions_actor ON status_mentions (actor_id, object_id);

-- Hashtags, normalised (NFKC, lower case) so #도자기 and #Pottery match however typed.
CREATE TABLE tags (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE object_tags (
    tag_id          bigint NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    object_id       bigint NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
    PRIMARY KEY (tag_id, object_id)
);
CREATE INDEX object_tags_object ON object_tags (object_id);

CREATE TABLE bookmarks (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id      bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    object_id       bigint NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, object_id)
);
CREATE INDEX bookmarks_account ON bookmarks (account_id, id DESC);

-- Pinned posts (the actor's `featured` collection), at most a handful per account.
CREATE TABLE pins (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id      bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    object_id       bigint NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, object_id)
);

-- What the author typed (for edits, delete-and-redraft and GET /source) and the app used.
CREATE TABLE status_sources (
    object_id       bigint PRIMARY KEY REFERENCES objects (id) ON DELETE CASCADE,
    text            text NOT NULL,
    spoiler_text    text NOT NULL DEFAULT '',
    app_id          bigint REFERENCES oauth_apps (id) ON DELETE SET NULL
);

-- POST /api/v1/statuses with an Idempotency-Key: the key is claimed in the posting
-- transaction, so the same key within an hour yields the first status and no second post.
CREATE TABLE idempotency_keys (
    account_id      bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    object_id       bigint REFERENCES objects (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, key)
);

-- Notifications of local people. Each points at what caused it, and goes with it: an undone
-- like, boost or follow removes its notification through the foreign key.
CREATE TABLE notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id      bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    from_id         bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    type            text NOT NULL
                    CHECK (type IN ('mention', 'status', 'reblog', 'follow', 'follow_request', 'favourite',
                                    'update')),
    object_id       bigint REFERENCES objects (id) ON DELETE CASCADE,
    like_id         bigint REFERENCES likes (id) ON DELETE CASCADE,
    announce_id     bigint REFERENCES announces (id) ON DELETE CASCADE,
    follow_id       bigint REFERENCES follows (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (account_id <> from_id)
);
CREATE UNIQUE INDEX notifications_once ON notifications (account_id, type, from_id, coalesce(object_id, 0));
CREATE INDEX notifications_account ON notifications (account_id, id DESC);

-- Account.statuses_count and last_status_at of every author on a timeline page, without counting
-- their posts each time: kept by statement-level triggers on objects (one upsert per statement,
-- whatever its number of rows), as Mastodon keeps account_stats.
CREATE TABLE account_counters (
    actor_id        bigint PRIMARY KEY REFERENCES actors (id) ON DELETE CASCADE,
    statuses_count  bigint NOT NULL DEFAULT 0,
    last_status_at  timestamptz
);
INSERT INTO account_counters (actor_id, statuses_count, last_status_at)
SELECT actor_id, count(*), max(published_at) FROM objects
WHERE actor_id IS NOT NULL AND deleted_at IS NULL GROUP BY actor_id;

CREATE FUNCTION account_counters_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO account_counters AS c (actor_id, statuses_count, last_status_at)
    SELECT actor_id, count(*), max(published_at) FROM new_rows
    WHERE actor_id IS NOT NULL AND deleted_at IS NULL GROUP BY actor_id ORDER BY actor_id
    ON CONFLICT (actor_id) DO UPDATE SET statuses_count = c.statuses_count + EXCLUDED.statuses_count,
        last_status_at = greatest(c.last_status_at, EXCLUDED.last_status_at);
    RETURN NULL;
END $$;

-- Marking a post deleted (or, never in practice, undeleting it) moves the count.
CREATE FUNCTION account_counters_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO account_counters AS c (actor_id, statuses_count)
    SELECT n.actor_id, sum(CASE WHEN n.deleted_at IS NULL THEN 1 ELSE -1 END)
    FROM old_rows o JOIN new_rows n ON n.id = o.id
    WHERE n.actor_id IS NOT NULL AND (o.deleted_at IS NULL) <> (n.deleted_at IS NULL)
    GROUP BY n.actor_id ORDER BY n.actor_id
    ON CONFLICT (actor_id) DO UPDATE SET statuses_count = c.statuses_count + EXCLUDED.statuses_count;
    RETURN NULL;
END $$;

CREATE FUNCTION account_counters_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE account_counters c SET statuses_count = c.statuses_count - d.n
    FROM (SELECT actor_id, count(*) AS n FROM old_rows WHERE deleted_at IS NULL GROUP BY actor_id) d
    WHERE c.actor_id = d.actor_id;
    RETURN NULL;
END $$;

CREATE TRIGGER objects_counters_insert AFTER INSERT ON objects REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION account_counters_on_insert();
CREATE TRIGGER objects_counters_update AFTER UPDATE ON objects REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION account_counters_on_update();
CREATE TRIGGER objects_counters_delete AFTER DELETE ON objects REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION account_counters_on_delete();
