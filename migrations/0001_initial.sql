-- The foundation: actors (local and remote), local accounts and their keys, objects,
-- follows, and the two durable work queues (inbound activities, outbound deliveries).
-- Later migrations add to this; this file never changes once released.

CREATE TABLE actors (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uri             text NOT NULL UNIQUE,
    is_local        boolean NOT NULL,
    username        text NOT NULL,
    domain          text NOT NULL,
    actor_type      text NOT NULL
                    CHECK (actor_type IN ('Person', 'Organization', 'Application', 'Service', 'Group')),
    display_name    text NOT NULL DEFAULT '',
    summary         text NOT NULL DEFAULT '',
    url             text,
    inbox_uri       text NOT NULL,
    outbox_uri      text,
    shared_inbox_uri text,
    followers_uri   text,
    following_uri   text,
    featured_uri    text,
    key_id          text NOT NULL,
    public_key_pem  text NOT NULL,
    manually_approves_followers boolean NOT NULL DEFAULT false,
    discoverable    boolean NOT NULL DEFAULT true,
    indexable       boolean NOT NULL DEFAULT true,
    icon_url        text,
    icon_media_type text,
    image_url       text,
    image_media_type text,
    raw             jsonb,
    fetched_at      timestamptz,
    deleted_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (username <> '' AND domain <> '')
);
-- Account names are case-insensitive per domain, as on Mastodon.
CREATE UNIQUE INDEX actors_username_domain ON actors (lower(username), domain);
CREATE INDEX actors_shared_inbox ON actors (shared_inbox_uri) WHERE shared_inbox_uri IS NOT NULL;

-- Private parts of local actors. The instance actor has role 'instance'.
CREATE TABLE local_accounts (
    actor_id        bigint PRIMARY KEY REFERENCES actors (id) ON DELETE CASCADE,
    private_key_pem text NOT NULL,
    password_hash   text,
    email           text,
    role            text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin', 'instance')),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX local_accounts_email ON local_accounts (lower(email)) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX local_accounts_one_instance_actor ON local_accounts (role) WHERE role = 'instance';

-- Notes, articles and other objects, local and remote. A Tombstone keeps its uri so
-- that a late Create of a deleted object is ignored.
CREATE TABLE objects (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uri             text NOT NULL UNIQUE,
    object_type     text NOT NULL,
    actor_id        bigint REFERENCES actors (id) ON DELETE CASCADE,
    is_local        boolean NOT NULL,
    in_reply_to_uri text,
    content         text NOT NULL DEFAULT '',
    name            text,
    summary         text,
    url             text,
    visibility      text NOT NULL DEFAULT 'public'
                    CHECK (visibility IN ('public', 'unlisted', 'private', 'direct')),
    data            jsonb NOT NULL DEFAULT '{}'::jsonb,
    published_at    timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz,
    deleted_at      timestamptz
);
CREATE INDEX objects_actor_published ON objects (actor_id, published_at DESC);
CREATE INDEX objects_in_reply_to ON objects (in_reply_to_uri) WHERE in_reply_to_uri IS NOT NULL;

CREATE TABLE follows (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    follower_id     bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    followee_id     bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    activity_uri    text,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'accepted')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    accepted_at     timestamptz,
    UNIQUE (follower_id, followee_id),
    CHECK (follower_id <> followee_id)
);
CREATE INDEX follows_followee ON follows (followee_id, state);

-- Inbound activities, stored once per id after their signature was verified, then
-- claimed by workers with FOR UPDATE SKIP LOCKED.
CREATE TABLE inbox_items (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    activity_uri    text NOT NULL UNIQUE,
    activity_type   text NOT NULL,
    actor_uri       text NOT NULL,
    recipient_id    bigint REFERENCES actors (id) ON DELETE SET NULL,
    body            jsonb NOT NULL,
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'done', 'ignored', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    last_error      text,
    received_at     timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX inbox_items_ready ON inbox_items (next_attempt_at) WHERE state = 'queued';

-- Outbound deliveries: one row per (activity, target inbox).
CREATE TABLE deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    activity_uri    text NOT NULL,
    sender_id       bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    inbox_uri       text NOT NULL,
    body            jsonb NOT NULL,
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'delivered', 'failed', 'gone')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    UNIQUE (activity_uri, inbox_uri)
);
CREATE INDEX deliveries_ready ON deliveries (next_attempt_at) WHERE state = 'queued';
