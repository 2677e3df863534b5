"""SQL that reads posts the way the client API shows them: who may see what, and everything a Status needs.

A status id is `objects.id` for a post and `announces.id` for a boost (one sequence, see
migration 0005). Lists return `Entry` rows; `get_status_details` and friends then load the
details of a whole page in a handful of queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from activities.actor import Actor

from ..media.entity import StoredMedia
from .actors import _ACTOR_COLUMNS, _actor  # the one row-to-Actor mapping
from .moderation import hidden_actor_sql

MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Window:
    """Exclusive id bounds, a page size, and the direction (ascending pages forward from `min_id`)."""

    lower: int
    upper: int
    limit: int
    ascending: bool = False

    def params(self) -> tuple[int, int, int]:
        """The three query parameters `window_sql` refers to: lower, upper, limit."""
        return self.lower, self.upper, self.limit


@dataclass(frozen=True)
class Entry:
    """One item of a list: `cursor` pages the list, `entry_id` is the status id, `reblog_id` marks a boost."""

    cursor: int
    entry_id: int
    object_id: int
    reblog_id: int | None = None


def window_sql(column: str, first: int, window: Window) -> tuple[str, str]:
    """(`column > $first AND column < $first+1`, `ORDER BY column … LIMIT $first+2`) for `window.params()`."""
    order = "ASC" if window.ascending else "DESC"
    return f"{column} > ${first} AND {column} < ${first + 1}", f"ORDER BY {column} {order} LIMIT ${first + 2}"


def visible_sql(viewer: str, o: str = "o") -> str:
    """SQL true when post `o` may be shown to `viewer` (a parameter; NULL for anonymous readers).

    Public and unlisted: anyone; private: the author, followers and the mentioned; direct: the
    author and the mentioned. Never deleted posts, posts of deleted or suspended actors (or of blocked
    domains), or across a block.
    """
    return f"""({o}.deleted_at IS NULL
        AND EXISTS (SELECT 1 FROM actors va WHERE va.id = {o}.actor_id AND va.deleted_at IS NULL)
        AND NOT {hidden_actor_sql(f'{o}.actor_id')}
        AND ({o}.visibility IN ('public', 'unlisted') OR {o}.actor_id = {viewer}
             OR EXISTS (SELECT 1 FROM status_mentions vm WHERE vm.object_id = {o}.id AND vm.actor_id = {viewer})
             OR ({o}.visibility = 'private' AND EXISTS (
                   SELECT 1 FROM follows vf WHERE vf.follower_id = {viewer} AND vf.followee_id = {o}.actor_id
                     AND vf.state = 'accepted')))
        AND NOT EXISTS (SELECT 1 FROM blocks vb WHERE (vb.actor_id = {o}.actor_id AND vb.target_id = {viewer})
                                                   OR (vb.actor_id = {viewer} AND vb.target_id = {o}.actor_id)))"""


def unwanted_sql(viewer: str, author: str, notifications: bool = False) -> str:
    """SQL true when `viewer` chose not to see `author`: a mute in force (for notifications, one that
    covers them too) or a domain block of the author's server. Never true for anonymous readers."""
    covers = " AND um.notifications" if notifications else ""
    return f"""(EXISTS (SELECT 1 FROM mutes um WHERE um.account_id = {viewer} AND um.target_id = {author}
                          AND (um.expires_at IS NULL OR um.expires_at > now()){covers})
         OR EXISTS (SELECT 1 FROM account_domain_blocks ud JOIN actors ua ON ua.domain = ud.domain
                    WHERE ud.account_id = {viewer} AND ua.id = {author}))"""


@dataclass(frozen=True)
class StatusRow:
    """A post with its counts and the viewer's own state (favourited, reblogged, bookmarked, pinned)."""

    id: int
    uri: str
    url: str | None
    object_type: str
    actor_id: int
    is_local: bool
    content: str
    name: str | None
    summary: str | None
    visibility: str
    data: dict
    published_at: datetime
    updated_at: datetime | None
    in_reply_to_id: int | None
    in_reply_to_account_id: int | None
    replies_count: int
    reblogs_count: int
    favourites_count: int
    favourited: bool
    reblogged: bool
    bookmarked: bool
    pinned: bool
    source_text: str | None
    source_spoiler: str | None
    app_name: str | None
    app_website: str | None


_STATUS_COLUMNS = """o.id, o.uri, o.url, o.object_type, o.actor_id, o.is_local, o.content, o.name, o.summary,
    o.visibility, o.data, o.published_at, o.updated_at,
    p.id AS in_reply_to_id, p.actor_id AS in_reply_to_account_id,
    (SELECT count(*) FROM objects r WHERE r.in_reply_to_uri = o.uri AND r.deleted_at IS NULL) AS replies_count,
    (SELECT count(*) FROM announces x WHERE x.object_uri = o.uri) AS reblogs_count,
    (SELECT count(*) FROM likes x WHERE x.object_uri = o.uri) AS favourites_count,
    EXISTS (SELECT 1 FROM likes x WHERE x.actor_id = $2 AND x.object_uri = o.uri) AS favourited,
    EXISTS (SELECT 1 FROM announces x WHERE x.actor_id = $2 AND x.object_uri = o.uri) AS reblogged,
    EXISTS (SELECT 1 FROM bookmarks x WHERE x.account_id = $2 AND x.object_id = o.id) AS bookmarked,
    EXISTS (SELECT 1 FROM pins x WHERE x.account_id = $2 AND x.object_id = o.id) AS pinned,
    s.text AS source_text, s.spoiler_text AS source_spoiler,
    ap.name AS app_name, ap.website AS app_website"""

# The posts among $1 (a bigint[]) for viewer $2.
_STATUS_FROM = """FROM objects o
    LEFT JOIN objects p ON p.uri = o.in_reply_to_uri
    LEFT JOIN status_sources s ON s.object_id = o.id
    LEFT JOIN oauth_apps ap ON ap.id = s.app_id
    WHERE o.id = ANY($1::bigint[]) AND o.actor_id IS NOT NULL"""


async def get_status_rows(conn: asyncpg.Connection, object_ids: list[int],
                          viewer_id: int | None) -> dict[int, StatusRow]:
    """The posts among `object_ids` (visibility not checked here), keyed by id."""
    rows = await conn.fetch(f"SELECT {_STATUS_COLUMNS} {_STATUS_FROM}", object_ids, viewer_id)
    return {row["id"]: StatusRow(**dict(row)) for row in rows}


@dataclass(frozen=True)
class BoostRow:
    """A boost: its own id and activity id, who boosted, when, and the boosted post."""

    id: int
    uri: str
    actor_id: int
    created_at: datetime
    object_id: int


async def get_boosts(conn: asyncpg.Connection, announce_ids: list[int]) -> dict[int, BoostRow]:
    """Boosts of stored posts by id."""
    rows = await conn.fetch(
        """SELECT an.id, an.activity_uri AS uri, an.actor_id, an.created_at, o.id AS object_id
           FROM announces an JOIN objects o ON o.uri = an.object_uri
           WHERE an.id = ANY($1::bigint[])""",
        announce_ids,
    )
    return {row["id"]: BoostRow(**dict(row)) for row in rows}


@dataclass(frozen=True)
class MentionRow:
    object_id: int
    actor_id: int
    username: str
    domain: str
    is_local: bool
    uri: str
    url: str | None


@dataclass(frozen=True)
class StatusDetails:
    """A post with what its Status shows beside the row: mentioned actors, hashtags and uploaded media."""

    row: StatusRow
    mentions: list[MentionRow]
    tags: list[str]
    uploads: list[StoredMedia]


_UPLOAD_COLUMNS = ", ".join(f"ma.{name}" for name in StoredMedia.__dataclass_fields__)


async def get_status_details(conn: asyncpg.Connection, object_ids: list[int],
                             viewer_id: int | None) -> dict[int, StatusDetails]:
    """`get_status_rows` with each post's mentions (by actor id), hashtags (by name) and uploads (by
    position), in one statement: a page's posts are one round trip to PostgreSQL, not five (rows,
    mentions, hashtags, uploads, remote attachments)."""
    rows = await conn.fetch(
        f"""SELECT {_STATUS_COLUMNS},
                   ARRAY(SELECT ROW(a.id, a.username, a.domain, a.is_local, a.uri, a.url)
                         FROM status_mentions m JOIN actors a ON a.id = m.actor_id
                         WHERE m.object_id = o.id ORDER BY a.id) AS mentioned,
                   ARRAY(SELECT t.name FROM object_tags ot JOIN tags t ON t.id = ot.tag_id
                         WHERE ot.object_id = o.id ORDER BY t.name) AS tag_names,
                   ARRAY(SELECT ROW({_UPLOAD_COLUMNS}) FROM media_attachments ma
                         WHERE ma.object_id = o.id ORDER BY ma.position) AS uploads
            {_STATUS_FROM}""",
        object_ids, viewer_id,
    )
    found = {}
    for row in rows:
        status = StatusRow(**{name: row[name] for name in StatusRow.__dataclass_fields__})
        found[status.id] = StatusDetails(
            status, [MentionRow(status.id, *mentioned) for mentioned in row["mentioned"]], list(row["tag_names"]),
            [StoredMedia(*upload) for upload in row["uploads"]])
    return found


async def get_tags(conn: asyncpg.Connection, object_ids: list[int]) -> dict[int, list[str]]:
    """Normalised hashtags of each post."""
    rows = await conn.fetch(
        """SELECT ot.object_id, t.name FROM object_tags ot JOIN tags t ON t.id = ot.tag_id
           WHERE ot.object_id = ANY($1::bigint[]) ORDER BY ot.object_id, t.name""",
        object_ids,
    )
    found: dict[int, list[str]] = {}
    for row in rows:
        found.setdefault(row["object_id"], []).append(row["name"])
    return found


async def get_actors(conn: asyncpg.Connection, actor_ids: list[int]) -> dict[int, Actor]:
    """Actors by id."""
    rows = await conn.fetch(f"SELECT {_ACTOR_COLUMNS} FROM actors a WHERE a.id = ANY($1::bigint[])", actor_ids)
    return {row["id"]: _actor(row) for row in rows}  # type: ignore[misc]


async def find_entry(conn: asyncpg.Connection, status_id: int, viewer_id: int | None) -> Entry | None:
    """The post or boost a status id names, if the viewer may see it."""
    row = await conn.fetchrow(
        f"""SELECT o.id AS object_id, NULL::bigint AS reblog_id FROM objects o
            WHERE o.id = $1 AND {visible_sql('$2')}
            UNION ALL
            SELECT o.id, an.id FROM announces an JOIN objects o ON o.uri = an.object_uri
            WHERE an.id = $1 AND o.visibility IN ('public', 'unlisted') AND {visible_sql('$2')}
              AND NOT EXISTS (SELECT 1 FROM blocks vb WHERE vb.actor_id = $2 AND vb.target_id = an.actor_id)""",
        status_id, viewer_id,
    )
    return Entry(status_id, status_id, row["object_id"], row["reblog_id"]) if row else None


async def get_object_uri(conn: asyncpg.Connection, object_id: int) -> str:
    """The ActivityPub id of a stored post."""
    return await conn.fetchval("SELECT uri FROM objects WHERE id = $1", object_id)


async def get_object_id(conn: asyncpg.Connection, uri: str) -> int | None:
    """The status id of a stored post by its ActivityPub id."""
    return await conn.fetchval("SELECT id FROM objects WHERE uri = $1", uri)


async def get_announce_id(conn: asyncpg.Connection, activity_uri: str) -> int | None:
    """The status id of a boost by its Announce id."""
    return await conn.fetchval("SELECT id FROM announces WHERE activity_uri = $1", activity_uri)


async def get_own_announce(conn: asyncpg.Connection, actor_id: int, object_id: int) -> int | None:
    """The status id of an actor's boost of a post, if any."""
    return await conn.fetchval(
        """SELECT an.id FROM announces an JOIN objects o ON o.uri = an.object_uri
           WHERE an.actor_id = $1 AND o.id = $2""",
        actor_id, object_id,
    )


async def visible_object_ids(conn: asyncpg.Connection, object_ids: list[int], viewer_id: int | None) -> list[int]:
    """The posts among `object_ids` the viewer may see."""
    rows = await conn.fetch(
        f"SELECT o.id FROM objects o WHERE o.id = ANY($1::bigint[]) AND {visible_sql('$2')}", object_ids, viewer_id
    )
    return [row["id"] for row in rows]
