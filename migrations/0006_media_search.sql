-- Uploaded media and search.
--
-- media_attachments: images uploaded through the client API. Files live under
-- [storage] data_dir/media/ with server-chosen random names (never a client's file name);
-- a row is unattached (object_id NULL) until a status takes it, in the status's own
-- transaction.
--
-- post_search: the character n-grams of each public or unlisted post's plain text (see
-- fedserver/search/ngrams.py) with a GIN index, so Korean text is searchable with core
-- PostgreSQL alone (no pg_trgm).

CREATE TABLE media_attachments (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id      bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    object_id       bigint REFERENCES objects (id) ON DELETE CASCADE,
    position        smallint CHECK (position BETWEEN 1 AND 16),
    media_type      text NOT NULL CHECK (media_type IN ('image/jpeg', 'image/png', 'image/gif', 'image/webp')),
    file_name       text NOT NULL UNIQUE CHECK (file_name ~ '^[0-9a-f]{32}\.(jpg|png|gif|webp)$'),
    preview_file_name text NOT NULL UNIQUE CHECK (preview_file_name ~ '^[0-9a-f]{32}\.(jpg|png|gif|webp)$'),
    url             text NOT NULL,
    preview_url     text NOT NULL,
    file_size       integer NOT NULL CHECK (file_size > 0),
    width           integer NOT NULL CHECK (width > 0),
    height          integer NOT NULL CHECK (height > 0),
    preview_width   integer NOT NULL CHECK (preview_width > 0),
    preview_height  integer NOT NULL CHECK (preview_height > 0),
    description     text CHECK (length(description) <= 1500),
    focus_x         real NOT NULL DEFAULT 0 CHECK (focus_x BETWEEN -1 AND 1),
    focus_y         real NOT NULL DEFAULT 0 CHECK (focus_y BETWEEN -1 AND 1),
    blurhash        text CHECK (length(blurhash) BETWEEN 6 AND 200),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((object_id IS NULL) = (position IS NULL))
);
CREATE UNIQUE INDEX media_attachments_object ON media_attachments (object_id, position) WHERE object_id IS NOT NULL;
CREATE INDEX media_attachments_unattached ON media_attachments (account_id, created_at) WHERE object_id IS NULL;

CREATE TABLE post_search (
    object_id       bigint PRIMARY KEY REFERENCES objects (id) ON DELETE CASCADE,
    terms           text[] NOT NULL
);
CREATE INDEX post_search_terms ON post_search USING gin (terms);

-- Account and hashtag search by prefix (LIKE 'abc%' needs pattern ops under a non-C collation).
CREATE INDEX actors_username_prefix ON actors (lower(username) text_pattern_ops);
CREATE INDEX tags_name_prefix ON tags (name text_pattern_ops);

-- Search by URL (`resolve`): posts and profiles are also known by their `url`.
CREATE INDEX objects_url_lookup ON objects (url) WHERE url IS NOT NULL;
CREATE INDEX actors_url_lookup ON actors (url) WHERE url IS NOT NULL;
