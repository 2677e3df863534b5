-- Direct-message conversations (GET /api/v1/conversations). A conversation itself is not stored: it is
-- computed from the direct posts an account may see, grouped by thread (fedserver/repo/conversations.py).
-- Only what the account did to one is kept: how far it has read, and up to where it hid it (DELETE), so
-- a newer post shows the conversation again, as on Mastodon.
CREATE TABLE conversation_marks (
    account_id      bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    thread_key      text NOT NULL,                -- the thread's context, or the uri of its root post
    read_up_to      bigint NOT NULL DEFAULT 0,    -- posts with ids up to this are read
    hidden_up_to    bigint NOT NULL DEFAULT 0,    -- hidden while no post is newer than this
    PRIMARY KEY (account_id, thread_key)
);

-- An account's own direct posts (the posts mentioning it are found through status_mentions_actor).
CREATE INDEX objects_direct_by_actor ON objects (actor_id, id) WHERE visibility = 'direct';
