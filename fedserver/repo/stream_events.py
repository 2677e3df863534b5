"""SQL for the streaming API: NOTIFY what became visible (in the caller's transaction), and the few reads the
listening side needs to route an event.

Every event is one `pg_notify` on the `fedserver_stream` channel, delivered to every listening process
when (and only if) the transaction commits. Payloads stay small (ids and a kind, never the rendered
status), under PostgreSQL's 8,000-byte limit: a home event lists at most ~7,000 bytes of account ids
(1,000 ids of up to six digits), and a post with more local followers is told in several events.

Kinds: `home` (an entry `e` for post `o` joined the home timelines of accounts `a`; `d` when the post is
direct), `public` (a public post `o`, `l` when local), `list` (a post `o` of a member of the exclusive lists `l`,
which reaches no home timeline), `notification` (row `n` for account `a`),
`edit` and `delete` (post `o`), `kill` (token `t` was revoked).
"""

from __future__ import annotations

import asyncpg

from .moderation import hidden_actor_sql

CHANNEL = "fedserver_stream"
_ID_BYTES = 7000  # the account ids of one home event, as JSON: with the rest, under the 8,000-byte limit


def home_notice_sql(entries: str) -> str:
    """A scalar subquery that streams `home` events for the home timeline rows in `entries` (a CTE of rows just
    written, with `account_id`, `entry_id`, `object_id`): one event per entry and chunk of its accounts. Written
    into the statement that inserts the rows (`home_feed.fan_out_posts`, `fan_out_boost`), it reads them and, by
    its key, each entry's post: no round trip, no scan of the home timelines or of the posts."""
    return f"""(SELECT count(pg_notify('{CHANNEL}', json_build_object(
                       'k', 'home', 'e', g.entry_id, 'o', g.object_id, 'a', g.ids,
                       'd', (SELECT o.visibility = 'direct' FROM objects o WHERE o.id = g.object_id))::text))
               FROM (SELECT c.entry_id, c.object_id, array_agg(c.account_id ORDER BY c.account_id) AS ids
                     FROM (SELECT e.account_id, e.entry_id, e.object_id,
                                  (row_number() OVER w - 1)
                                      / ({_ID_BYTES} / (length((max(e.account_id) OVER w)::text) + 1)) AS chunk
                           FROM {entries} e
                           WINDOW w AS (PARTITION BY e.entry_id ORDER BY e.account_id
                                        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)) AS c
                     GROUP BY c.entry_id, c.object_id, c.chunk) AS g)"""


def posts_notice_sql(object_ids: str) -> str:
    """A scalar subquery that streams what new posts `object_ids` (an SQL array) mean beyond home timelines:
    `public` for public ones, `list` for those of members of exclusive lists (which reach no home timeline)."""
    return f"""((SELECT count(pg_notify('{CHANNEL}',
                                     json_build_object('k', 'public', 'o', o.id, 'l', o.is_local)::text))
                FROM objects o WHERE o.id = ANY({object_ids}) AND o.visibility = 'public' AND o.deleted_at IS NULL)
              + (SELECT count(pg_notify('{CHANNEL}', json_build_object('k', 'list', 'o', x.id, 'l', x.lists)::text))
                 FROM (SELECT o.id, array_agg(l.id) AS lists
                       FROM objects o JOIN list_accounts m ON m.account_id = o.actor_id
                            JOIN lists l ON l.id = m.list_id AND l.exclusive
                       WHERE o.id = ANY({object_ids}) AND o.visibility <> 'direct' AND o.deleted_at IS NULL
                       GROUP BY o.id) AS x))"""


def direct_notice_sql(post: str, notice: str) -> str:
    """A scalar subquery that streams a direct notice (`statuses.insert_direct_notice`), its home entry and its
    notification, from the CTEs that insert them: `post` (its `id`) and `notice` (`id`, `account_id`). Written
    into the inserting statement, it costs no round trip of its own."""
    return f"""(SELECT count(pg_notify('{CHANNEL}', s.payload)) FROM (
                   SELECT json_build_object('k', 'home', 'e', p.id, 'o', p.id, 'a', ARRAY[n.account_id],
                                            'd', true)::text AS payload FROM {post} p, {notice} n
                   UNION ALL
                   SELECT json_build_object('k', 'notification', 'n', n.id, 'a', n.account_id)::text
                   FROM {notice} n) AS s)"""


async def publish_post_changed(conn: asyncpg.Connection, kind: str, object_id: int) -> None:
    """`edit` or `delete` of a post; the listening side finds which connected people had it."""
    await conn.execute(f"SELECT pg_notify('{CHANNEL}', json_build_object('k', $1::text, 'o', $2::bigint)::text)",
                       kind, object_id)


async def publish_token_revoked(conn: asyncpg.Connection, token_hash: bytes) -> None:
    """`kill` for a token that is now revoked, so its open streams close at once."""
    await conn.execute(
        f"""SELECT pg_notify('{CHANNEL}', json_build_object('k', 'kill', 't', id)::text)
            FROM oauth_tokens WHERE token_hash = $1 AND revoked_at IS NOT NULL""",
        token_hash,
    )


NOTIFY_NOTIFICATIONS = (
    f"SELECT count(pg_notify('{CHANNEL}', json_build_object('k', 'notification', 'n', n.id, 'a', n.account_id)::text))"
    " FROM inserted n")


async def insert_notifications(conn: asyncpg.Connection, insert_sql: str, *args: object) -> None:
    """Run an `INSERT INTO notifications … RETURNING id, account_id` and announce each row it inserted."""
    await conn.execute(f"WITH inserted AS ({insert_sql}) {NOTIFY_NOTIFICATIONS}", *args)


# The listening side.


async def get_post_summary(conn: asyncpg.Connection, object_id: int) -> tuple[int, str, bool] | None:
    """(author id, visibility, is_local) of a post, deleted or not."""
    row = await conn.fetchrow("SELECT actor_id, visibility, is_local FROM objects WHERE id = $1", object_id)
    return (row["actor_id"], row["visibility"], row["is_local"]) if row and row["actor_id"] else None


async def get_entry_actors(conn: asyncpg.Connection, entry_id: int, object_id: int) -> list[int]:
    """The author of a post and, for a boost entry, the booster: whom a block with the reader hides."""
    rows = await conn.fetch(
        """SELECT actor_id FROM objects WHERE id = $2
           UNION SELECT actor_id FROM announces WHERE id = $1 AND $1 <> $2""",
        entry_id, object_id,
    )
    return [row["actor_id"] for row in rows if row["actor_id"] is not None]


async def holders_among(conn: asyncpg.Connection, object_id: int, account_ids: list[int]) -> list[int]:
    """Which of `account_ids` have the post (or a boost of it) in their home timeline."""
    rows = await conn.fetch(
        "SELECT DISTINCT account_id FROM home_feed WHERE object_id = $1 AND account_id = ANY($2::bigint[])",
        object_id, account_ids,
    )
    return [row["account_id"] for row in rows]


async def blocked_among(conn: asyncpg.Connection, actor_ids: list[int], account_ids: list[int]) -> set[int]:
    """Which of `account_ids` block, or are blocked by, one of `actor_ids`, or chose not to see one of them (a
    mute in force, a domain block of its server): the readers a post of theirs is not streamed to."""
    rows = await conn.fetch(
        """SELECT actor_id AS reader FROM blocks WHERE actor_id = ANY($2::bigint[]) AND target_id = ANY($1::bigint[])
           UNION
           SELECT target_id FROM blocks WHERE target_id = ANY($2::bigint[]) AND actor_id = ANY($1::bigint[])
           UNION
           SELECT account_id FROM mutes WHERE account_id = ANY($2::bigint[]) AND target_id = ANY($1::bigint[])
             AND (expires_at IS NULL OR expires_at > now())
           UNION
           SELECT d.account_id FROM account_domain_blocks d JOIN actors x ON x.domain = d.domain
           WHERE d.account_id = ANY($2::bigint[]) AND x.id = ANY($1::bigint[])""",
        actor_ids, account_ids,
    )
    return {row["reader"] for row in rows}


async def owns_list(conn: asyncpg.Connection, account_id: int, list_id: int) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM lists WHERE id = $1 AND account_id = $2)",
                               list_id, account_id)


async def lists_holding(conn: asyncpg.Connection, list_ids: list[int], owner_ids: list[int],
                        actor_ids: list[int]) -> list[int]:
    """Those of `list_ids` owned by one of `owner_ids` with one of `actor_ids` as a member."""
    rows = await conn.fetch(
        """SELECT DISTINCT l.id FROM lists l JOIN list_accounts m ON m.list_id = l.id
           WHERE l.id = ANY($1::bigint[]) AND l.account_id = ANY($2::bigint[]) AND m.account_id = ANY($3::bigint[])""",
        list_ids, owner_ids, actor_ids)
    return [r["id"] for r in rows]


async def kept_from_public(conn: asyncpg.Connection, actor_id: int) -> bool:
    """Whether the operator keeps the actor out of public lists (silenced or suspended, itself or its domain)."""
    return await conn.fetchval(f"SELECT {hidden_actor_sql('$1::bigint', silenced_too=True)}", actor_id)
