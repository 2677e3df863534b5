-- Federation: interactions (likes, announces, blocks), tombstones of deleted objects,
-- the activities we publish, and per-domain delivery health.

CREATE INDEX actors_key_id ON actors (key_id);

CREATE TABLE likes (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor_id        bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    object_uri      text NOT NULL,
    activity_uri    text NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (actor_id, object_uri)
);
CREATE INDEX likes_object ON likes (object_uri);

CREATE TABLE announces (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor_id        bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    object_uri      text NOT NULL,
    activity_uri    text NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (actor_id, object_uri)
);
CREATE INDEX announces_object ON announces (object_uri);

CREATE TABLE blocks (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor_id        bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    target_id       bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    activity_uri    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (actor_id, target_id)
);

-- A deleted object's id, kept so that a Create arriving after its Delete is ignored.
CREATE TABLE tombstones (
    uri             text PRIMARY KEY,
    actor_uri       text NOT NULL,
    deleted_at      timestamptz NOT NULL DEFAULT now()
);

-- Activities published by local actors, served at their ids and listed in outboxes.
CREATE TABLE activities (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uri             text NOT NULL UNIQUE,
    actor_id        bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    activity_type   text NOT NULL,
    object_uri      text,
    visibility      text NOT NULL DEFAULT 'public'
                    CHECK (visibility IN ('public', 'unlisted', 'private', 'direct')),
    data            jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activities_actor ON activities (actor_id, id DESC);

-- Delivery health per receiving domain: failing for days pauses delivery, a probe resumes it.
CREATE TABLE delivery_domains (
    domain          text PRIMARY KEY,
    failing_since   timestamptz,
    last_failure_at timestamptz,
    last_success_at timestamptz,
    paused_until    timestamptz
);

ALTER TABLE deliveries ADD COLUMN domain text NOT NULL DEFAULT '';
CREATE INDEX deliveries_domain ON deliveries (domain) WHERE state = 'queued';

-- Inbound items remember which key signed them and which local actor's inbox they came to.
ALTER TABLE inbox_items ADD COLUMN signer_key_id text;
