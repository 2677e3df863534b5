"""SQL the client API needs about accounts: login look-up, visible accounts, counts, relationships."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from activities.actor import Actor

from .actors import _ACTOR_COLUMNS, _actor  # the one row-to-Actor mapping
from .moderation import domain_match_sql, hidden_actor_sql

# People, not the instance actor, and not deleted accounts.
_VISIBLE = "a.deleted_at IS NULL AND coalesce(l.role, 'user') <> 'instance'"


@dataclass(frozen=True)
class LoginAccount:
    id: int
    username: str
    password_hash: str | None
    role: str
    approved: bool = True


@dataclass(frozen=True)
class AccountStats:
    statuses_count: int
    followers_count: int
    following_count: int
    last_status_at: datetime | None


@dataclass(frozen=True)
class RelationshipRow:
    following: str | None  # follow state of viewer → target: 'accepted', 'pending' or None
    followed_by: str | None
    blocking: bool
    blocked_by: bool
    muting: bool = False
    muting_notifications: bool = False
    domain_blocking: bool = False


async def get_login_account(conn: asyncpg.Connection, name_or_email: str) -> LoginAccount | None:
    """A live local user by account name or email, case-insensitive."""
    row = await conn.fetchrow(
        """SELECT a.id, a.username, l.password_hash, l.role, l.approved
           FROM actors a JOIN local_accounts l ON l.actor_id = a.id
           WHERE a.is_local AND a.deleted_at IS NULL AND a.suspended_at IS NULL AND l.role <> 'instance'
             AND (lower(a.username) = lower($1) OR lower(l.email) = lower($1))
           ORDER BY lower(a.username) = lower($1) DESC LIMIT 1""",
        name_or_email,
    )
    return LoginAccount(**dict(row)) if row else None


async def get_visible_account(conn: asyncpg.Connection, actor_id: int) -> Actor | None:
    """A local or remote account the API may show, by id."""
    row = await conn.fetchrow(
        f"""SELECT {_ACTOR_COLUMNS} FROM actors a LEFT JOIN local_accounts l ON l.actor_id = a.id
            WHERE a.id = $1 AND {_VISIBLE}""",
        actor_id,
    )
    return _actor(row)


async def get_visible_account_by_handle(conn: asyncpg.Connection, username: str, domain: str) -> Actor | None:
    """A visible account by case-insensitive name and exact domain."""
    row = await conn.fetchrow(
        f"""SELECT {_ACTOR_COLUMNS} FROM actors a LEFT JOIN local_accounts l ON l.actor_id = a.id
            WHERE lower(a.username) = lower($1) AND a.domain = $2 AND {_VISIBLE}""",
        username, domain.lower(),
    )
    return _actor(row)


async def get_email(conn: asyncpg.Connection, actor_id: int) -> str | None:
    """A local account's email, if one is set."""
    return await conn.fetchval("SELECT email FROM local_accounts WHERE actor_id = $1", actor_id)


def _stats_sql(account: str) -> str:
    """The columns `_stats` reads for the account whose id is `account`, with `account_counters c` joined."""
    return f"""coalesce(c.statuses_count, 0) AS statuses, c.last_status_at,
        (SELECT count(*) FROM follows f WHERE f.followee_id = {account} AND f.state = 'accepted') AS followers,
        (SELECT count(*) FROM follows f WHERE f.follower_id = {account} AND f.state = 'accepted') AS following"""


def _stats(row: asyncpg.Record) -> AccountStats:
    return AccountStats(row["statuses"], row["followers"], row["following"], row["last_status_at"])


async def get_account_stats(conn: asyncpg.Connection, actor_ids: list[int]) -> dict[int, AccountStats]:
    """Post and follow counts and the last post time of each account (post counts kept by triggers, 0005)."""
    rows = await conn.fetch(
        f"""SELECT x.id, {_stats_sql('x.id')}
            FROM unnest($1::bigint[]) AS x(id) LEFT JOIN account_counters c ON c.actor_id = x.id""",
        actor_ids,
    )
    return {row["id"]: _stats(row) for row in rows}


async def get_actors_with_stats(conn: asyncpg.Connection,
                                actor_ids: list[int]) -> dict[int, tuple[Actor, AccountStats]]:
    """Actors by id with their counts (`get_account_stats`), in one statement."""
    rows = await conn.fetch(
        f"""SELECT {_ACTOR_COLUMNS}, {_stats_sql('a.id')}
            FROM actors a LEFT JOIN account_counters c ON c.actor_id = a.id WHERE a.id = ANY($1::bigint[])""",
        actor_ids,
    )
    return {row["id"]: (_actor(row), _stats(row)) for row in rows}  # type: ignore[misc]


async def count_follow_requests(conn: asyncpg.Connection, actor_id: int) -> int:
    """Follow requests waiting for this account's approval."""
    return await conn.fetchval(
        "SELECT count(*) FROM follows WHERE followee_id = $1 AND state = 'pending'", actor_id
    )


async def get_relationships(conn: asyncpg.Connection, viewer_id: int,
                            target_ids: list[int]) -> dict[int, RelationshipRow]:
    """How the viewer and each existing target relate (follows and blocks both ways, the viewer's mutes and
    domain blocks)."""
    rows = await conn.fetch(
        """SELECT a.id,
                  (SELECT state FROM follows WHERE follower_id = $1 AND followee_id = a.id) AS following,
                  (SELECT state FROM follows WHERE follower_id = a.id AND followee_id = $1) AS followed_by,
                  EXISTS (SELECT 1 FROM blocks WHERE actor_id = $1 AND target_id = a.id) AS blocking,
                  EXISTS (SELECT 1 FROM blocks WHERE actor_id = a.id AND target_id = $1) AS blocked_by,
                  m.id IS NOT NULL AS muting, coalesce(m.notifications, false) AS muting_notifications,
                  EXISTS (SELECT 1 FROM account_domain_blocks d WHERE d.account_id = $1 AND d.domain = a.domain
                          AND NOT a.is_local) AS domain_blocking
           FROM actors a
           LEFT JOIN mutes m ON m.account_id = $1 AND m.target_id = a.id
                             AND (m.expires_at IS NULL OR m.expires_at > now())
           WHERE a.id = ANY($2::bigint[])""",
        viewer_id, target_ids,
    )
    return {row["id"]: RelationshipRow(row["following"], row["followed_by"], row["blocking"], row["blocked_by"],
                                       row["muting"], row["muting_notifications"], row["domain_blocking"])
            for row in rows}


async def read_directory(conn: asyncpg.Connection, *, local: bool, order: str, limit: int,
                         offset: int) -> list[Actor]:
    """The profile directory: discoverable accounts (approved, not suspended nor silenced, not on a moderated
    domain), by their last post (`active`) or newest first (`new`)."""
    key = "c.last_status_at DESC NULLS LAST, a.id DESC" if order == "active" else "a.created_at DESC, a.id DESC"
    rows = await conn.fetch(
        f"""SELECT {_ACTOR_COLUMNS} FROM actors a LEFT JOIN local_accounts l ON l.actor_id = a.id
                LEFT JOIN account_counters c ON c.actor_id = a.id
            WHERE {_VISIBLE} AND a.discoverable AND coalesce(l.approved, true) AND a.actor_type <> 'Application'
              AND ($1::boolean IS FALSE OR a.is_local)
              AND NOT {hidden_actor_sql('a.id', silenced_too=True)}
            ORDER BY {key} LIMIT $2 OFFSET $3""",
        local, limit, offset,
    )
    return [_actor(row) for row in rows]


async def count_remote_domains(conn: asyncpg.Connection) -> int:
    """Other servers this instance knows actors of."""
    return await conn.fetchval("SELECT count(DISTINCT domain) FROM actors WHERE NOT is_local")


async def list_remote_domains(conn: asyncpg.Connection) -> list[str]:
    """The other servers this instance knows actors of, in name order (`/api/v1/instance/peers`), without the
    blocked ones (as Mastodon leaves them out)."""
    return [r["domain"] for r in await conn.fetch(
        f"""SELECT DISTINCT a.domain FROM actors a WHERE NOT a.is_local AND NOT EXISTS (
                SELECT 1 FROM domain_moderation d WHERE d.severity = 'suspend' AND {domain_match_sql('a.domain', 'd.domain')})
            ORDER BY a.domain""")]


async def weekly_activity(conn: asyncpg.Connection, weeks: int) -> list[asyncpg.Record]:
    """Per week (Monday 00:00 UTC, newest first, the current week included): local statuses posted,
    distinct local accounts that logged in (a site session or an app token begun) and accounts created."""
    return await conn.fetch(
        """WITH w AS (
               SELECT generate_series(date_trunc('week', now() AT TIME ZONE 'UTC') - ($1 - 1) * interval '1 week',
                                      date_trunc('week', now() AT TIME ZONE 'UTC'), interval '1 week') AS start)
           SELECT extract(epoch FROM w.start)::bigint AS week,
                  (SELECT count(*) FROM objects o WHERE o.is_local AND o.deleted_at IS NULL
                     AND o.published_at >= w.start AT TIME ZONE 'UTC'
                     AND o.published_at < (w.start + interval '1 week') AT TIME ZONE 'UTC') AS statuses,
                  (SELECT count(DISTINCT x.account_id) FROM (
                       SELECT account_id, created_at FROM sessions
                       UNION ALL SELECT account_id, created_at FROM oauth_tokens WHERE account_id IS NOT NULL) x
                     WHERE x.created_at >= w.start AT TIME ZONE 'UTC'
                       AND x.created_at < (w.start + interval '1 week') AT TIME ZONE 'UTC') AS logins,
                  (SELECT count(*) FROM local_accounts l WHERE l.role <> 'instance'
                     AND l.created_at >= w.start AT TIME ZONE 'UTC'
                     AND l.created_at < (w.start + interval '1 week') AT TIME ZONE 'UTC') AS registrations
           FROM w ORDER BY w.start DESC""",
        weeks)


async def count_active_users(conn: asyncpg.Connection, days: int) -> int:
    """Local users who posted (or signed up) within `days`."""
    return await conn.fetchval(
        """SELECT count(*) FROM actors a JOIN local_accounts l ON l.actor_id = a.id
           WHERE l.role <> 'instance' AND a.deleted_at IS NULL
             AND (a.created_at > now() - make_interval(days => $1)
                  OR EXISTS (SELECT 1 FROM objects o WHERE o.actor_id = a.id
                             AND o.published_at > now() - make_interval(days => $1)))""",
        days,
    )


async def update_account_flags(conn: asyncpg.Connection, actor_id: int, *, locked: bool | None,
                               discoverable: bool | None, indexable: bool | None) -> bool:
    """Change the locked, discoverable and indexable flags (None keeps one); False if the account is gone."""
    status = await conn.execute(
        """UPDATE actors SET manually_approves_followers = coalesce($2, manually_approves_followers),
                  discoverable = coalesce($3, discoverable), indexable = coalesce($4, indexable),
                  updated_at = now()
           WHERE id = $1 AND is_local AND deleted_at IS NULL""",
        actor_id, locked, discoverable, indexable,
    )
    return status.endswith(" 1")


async def read_follow_list(conn: asyncpg.Connection, account_id: int, direction: str,
                           window) -> list[tuple[int, int]]:
    """(follows row id, account id) of accepted followers (`direction="followers"`) or followees of an account.

    Paged by the follows row id within `window` (a `status_views.Window`); visible accounts only.
    """
    assert direction in ("followers", "following")
    mine, other = ("followee_id", "follower_id") if direction == "followers" else ("follower_id", "followee_id")
    order = "ASC" if window.ascending else "DESC"
    rows = await conn.fetch(
        f"""SELECT f.id, f.{other} AS account_id
            FROM follows f JOIN actors a ON a.id = f.{other} LEFT JOIN local_accounts l ON l.actor_id = a.id
            WHERE f.{mine} = $1 AND f.state = 'accepted' AND {_VISIBLE}
              AND f.id > $2 AND f.id < $3
            ORDER BY f.id {order} LIMIT $4""",
        account_id, *window.params(),
    )
    return [(r["id"], r["account_id"]) for r in rows]
