-- Moderation by the operator: suspended and silenced accounts, blocked and silenced domains,
-- reports from local people and from other servers (Flag), and a log of every action.

-- A suspended actor is refused at the inbox, never fetched nor delivered to, and its posts are
-- hidden; a silenced one stays out of public timelines and the discovery page. A suspended local
-- account cannot log in.
ALTER TABLE actors ADD COLUMN suspended_at timestamptz, ADD COLUMN silenced_at timestamptz;

-- A domain's moderation covers its subdomains too. `public_comment` is published at
-- /api/v1/instance/domain_blocks and on the about page; `private_comment` is for the operators.
CREATE TABLE domain_moderation (
    domain          text PRIMARY KEY CHECK (domain = lower(domain) AND domain <> ''),
    severity        text NOT NULL CHECK (severity IN ('silence', 'suspend')),
    public_comment  text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reports (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- a local account, or (for a Flag from another server) the actor that sent it
    reporter_id     bigint REFERENCES actors (id) ON DELETE SET NULL,
    target_id       bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    status_ids      bigint[] NOT NULL DEFAULT '{}',
    comment         text NOT NULL DEFAULT '',
    category        text NOT NULL DEFAULT 'other' CHECK (category IN ('spam', 'legal', 'violation', 'other')),
    rule_ids        bigint[] NOT NULL DEFAULT '{}',
    forwarded       boolean NOT NULL DEFAULT false,
    flag_uri        text UNIQUE,  -- the Flag this report came in as, or went out as
    is_remote       boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    resolved_by     text
);
CREATE INDEX reports_open ON reports (id) WHERE resolved_at IS NULL;

-- Who did what, and why: every moderation action, whether from the command line or the admin pages.
CREATE TABLE moderation_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT now(),
    moderator       text NOT NULL,
    action          text NOT NULL,
    target          text NOT NULL,
    reason          text NOT NULL DEFAULT ''
);
