"""SQL for actors and local accounts. Functions take a connection; the caller owns the transaction."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from activities.actor import Actor, ActorUrls

_ACTOR_COLUMNS = ", ".join(f"a.{name}" for name in Actor.__dataclass_fields__)


def _actor(row: asyncpg.Record | None) -> Actor | None:
    return Actor(**{name: row[name] for name in Actor.__dataclass_fields__}) if row else None


@dataclass(frozen=True)
class LocalAccount:
    actor: Actor
    private_key_pem: str
    password_hash: str | None
    email: str | None
    role: str


async def insert_local_actor(
    conn: asyncpg.Connection,
    *,
    username: str,
    domain: str,
    actor_type: str,
    display_name: str,
    urls: ActorUrls,
    public_key_pem: str,
    private_key_pem: str,
    password_hash: str | None,
    role: str,
    manually_approves_followers: bool = False,
    discoverable: bool = True,
    approved: bool = True,
    signup_reason: str = "",
    email: str | None = None,
) -> Actor:
    """Insert a local actor and its private row; raises UniqueViolationError on a taken name."""
    row = await conn.fetchrow(
        f"""INSERT INTO actors AS a (uri, is_local, username, domain, actor_type, display_name, url,
                   inbox_uri, outbox_uri, shared_inbox_uri, followers_uri, following_uri, featured_uri,
                   key_id, public_key_pem, manually_approves_followers, discoverable, indexable)
            VALUES ($1, true, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)
            RETURNING {_ACTOR_COLUMNS}""",
        urls.id, username, domain, actor_type, display_name, urls.url, urls.inbox, urls.outbox,
        urls.shared_inbox, urls.followers, urls.following, urls.featured, urls.key_id, public_key_pem,
        manually_approves_followers, discoverable,
    )
    await conn.execute(
        """INSERT INTO local_accounts (actor_id, private_key_pem, password_hash, role, approved, signup_reason, email)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        row["id"], private_key_pem, password_hash, role, approved, signup_reason, email,
    )
    return _actor(row)  # type: ignore[return-value]


async def get_local_actor_by_username(conn: asyncpg.Connection, username: str) -> Actor | None:
    """A local actor (deleted ones included) by case-insensitive name."""
    row = await conn.fetchrow(
        f"SELECT {_ACTOR_COLUMNS} FROM actors a WHERE a.is_local AND lower(a.username) = lower($1)", username
    )
    return _actor(row)


async def get_shown_local_actor(conn: asyncpg.Connection, username: str) -> Actor | None:
    """A local actor by name as others may see it (deleted ones included); None while its sign-up waits for
    an administrator's approval, so an account nobody let in is neither found nor followed."""
    row = await conn.fetchrow(
        f"""SELECT {_ACTOR_COLUMNS} FROM actors a LEFT JOIN local_accounts l ON l.actor_id = a.id
            WHERE a.is_local AND lower(a.username) = lower($1) AND coalesce(l.approved, true)""", username)
    return _actor(row)


async def get_actor_by_uri(conn: asyncpg.Connection, uri: str) -> Actor | None:
    """Any actor by its ActivityPub id."""
    row = await conn.fetchrow(f"SELECT {_ACTOR_COLUMNS} FROM actors a WHERE a.uri = $1", uri)
    return _actor(row)


async def get_actor_by_id(conn: asyncpg.Connection, actor_id: int) -> Actor | None:
    """Any actor by its row id."""
    return _actor(await conn.fetchrow(f"SELECT {_ACTOR_COLUMNS} FROM actors a WHERE a.id = $1", actor_id))


async def get_actors_by_uris(conn: asyncpg.Connection, uris: list[str]) -> dict[str, Actor]:
    """The stored ones of these actors, by ActivityPub id, in one statement."""
    rows = await conn.fetch(f"SELECT {_ACTOR_COLUMNS} FROM actors a WHERE a.uri = ANY($1::text[])", uris)
    return {actor.uri: actor for actor in map(_actor, rows) if actor is not None}


async def get_local_account_by_username(conn: asyncpg.Connection, username: str) -> LocalAccount | None:
    """A local account with its private parts."""
    row = await conn.fetchrow(
        f"""SELECT {_ACTOR_COLUMNS}, l.private_key_pem, l.password_hash, l.email, l.role
            FROM actors a JOIN local_accounts l ON l.actor_id = a.id
            WHERE lower(a.username) = lower($1) AND l.role <> 'instance'""",
        username,
    )
    return _local_account(row)


async def get_instance_account(conn: asyncpg.Connection) -> LocalAccount | None:
    """The instance actor (type Application) with its private key."""
    row = await conn.fetchrow(
        f"""SELECT {_ACTOR_COLUMNS}, l.private_key_pem, l.password_hash, l.email, l.role
            FROM actors a JOIN local_accounts l ON l.actor_id = a.id WHERE l.role = 'instance'"""
    )
    return _local_account(row)


def _local_account(row: asyncpg.Record | None) -> LocalAccount | None:
    if row is None:
        return None
    return LocalAccount(
        actor=_actor(row),  # type: ignore[arg-type]
        private_key_pem=row["private_key_pem"],
        password_hash=row["password_hash"],
        email=row["email"],
        role=row["role"],
    )


async def list_local_accounts(conn: asyncpg.Connection, *, include_deleted: bool = False) -> list[LocalAccount]:
    """Local user accounts (not the instance actor), oldest first."""
    rows = await conn.fetch(
        f"""SELECT {_ACTOR_COLUMNS}, l.private_key_pem, l.password_hash, l.email, l.role
            FROM actors a JOIN local_accounts l ON l.actor_id = a.id
            WHERE l.role <> 'instance' AND ($1 OR a.deleted_at IS NULL)
            ORDER BY a.id""",
        include_deleted,
    )
    return [_local_account(row) for row in rows]  # type: ignore[misc]


async def mark_actor_deleted(conn: asyncpg.Connection, actor_id: int) -> bool:
    """Mark a local actor deleted and drop its password; the name stays reserved. False if already gone."""
    status = await conn.execute(
        "UPDATE actors SET deleted_at = now(), updated_at = now() WHERE id = $1 AND deleted_at IS NULL", actor_id
    )
    await conn.execute("UPDATE local_accounts SET password_hash = NULL, email = NULL WHERE actor_id = $1", actor_id)
    return status.endswith(" 1")


@dataclass(frozen=True)
class PendingSignup:
    """An account that asked to join and waits for an administrator."""

    actor: Actor
    reason: str
    email: str | None


async def list_pending_signups(conn: asyncpg.Connection) -> list[PendingSignup]:
    """Accounts waiting for approval, oldest first."""
    rows = await conn.fetch(
        f"""SELECT {_ACTOR_COLUMNS}, l.signup_reason, l.email FROM actors a JOIN local_accounts l ON l.actor_id = a.id
            WHERE NOT l.approved AND a.deleted_at IS NULL ORDER BY l.created_at, a.id""")
    return [PendingSignup(_actor(row), row["signup_reason"], row["email"]) for row in rows]  # type: ignore[arg-type]


async def is_pending(conn: asyncpg.Connection, actor_id: int) -> bool:
    """Whether a local account still waits for approval."""
    return bool(await conn.fetchval("SELECT NOT approved FROM local_accounts WHERE actor_id = $1", actor_id))


async def approve_signup(conn: asyncpg.Connection, actor_id: int) -> bool:
    """Let a waiting account in (it may log in and is listed); False if it was not waiting."""
    approved = await conn.fetchval(
        "UPDATE local_accounts SET approved = true WHERE actor_id = $1 AND NOT approved RETURNING actor_id", actor_id)
    if approved is None:
        return False
    await conn.execute("UPDATE actors SET discoverable = true, indexable = true, updated_at = now() WHERE id = $1",
                       actor_id)
    return True


async def delete_pending_signup(conn: asyncpg.Connection, actor_id: int) -> bool:
    """Remove a waiting account entirely (it never published anything); False if it was not waiting."""
    deleted = await conn.fetchval(
        """DELETE FROM actors a USING local_accounts l
           WHERE a.id = $1 AND l.actor_id = a.id AND NOT l.approved RETURNING a.id""", actor_id)
    return deleted is not None


async def lock_local_accounts(conn: asyncpg.Connection) -> None:
    """Hold off other creators of local accounts until this transaction ends (one instance actor)."""
    await conn.execute("LOCK TABLE local_accounts IN SHARE ROW EXCLUSIVE MODE")


async def update_role(conn: asyncpg.Connection, actor_id: int, role: str) -> None:
    """Set a local user's role ('user' or 'admin'; never the instance actor's)."""
    await conn.execute("UPDATE local_accounts SET role = $2 WHERE actor_id = $1 AND role <> 'instance'", actor_id, role)


async def update_instance_actor_identity(conn: asyncpg.Connection, actor_id: int, username: str, domain: str,
                                         urls: ActorUrls) -> None:
    """Follow a change of the configured domain or scheme for the instance actor."""
    await conn.execute(
        """UPDATE actors SET uri = $2, username = $3, domain = $4, url = $5, inbox_uri = $6, outbox_uri = $7,
                  shared_inbox_uri = $8, followers_uri = $9, following_uri = $10, featured_uri = $11,
                  key_id = $12, updated_at = now()
           WHERE id = $1""",
        actor_id, urls.id, username, domain, urls.url, urls.inbox, urls.outbox, urls.shared_inbox,
        urls.followers, urls.following, urls.featured, urls.key_id,
    )


async def count_local_users(conn: asyncpg.Connection) -> int:
    """Local user accounts that are not deleted."""
    return await conn.fetchval(
        """SELECT count(*) FROM actors a JOIN local_accounts l ON l.actor_id = a.id
           WHERE l.role <> 'instance' AND a.deleted_at IS NULL"""
    )


async def count_active_local_users(conn: asyncpg.Connection) -> tuple[int, int]:
    """Local users who posted (or joined) within the last 30 and 180 days."""
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE last_seen > now() - interval '30 days') AS month,
                  count(*) FILTER (WHERE last_seen > now() - interval '180 days') AS halfyear
           FROM (SELECT greatest(a.created_at, max(o.published_at)) AS last_seen
                 FROM actors a JOIN local_accounts l ON l.actor_id = a.id
                 LEFT JOIN objects o ON o.actor_id = a.id AND o.is_local
                 WHERE l.role <> 'instance' AND a.deleted_at IS NULL
                 GROUP BY a.id) s"""
    )
    return row["month"], row["halfyear"]


async def count_local_posts(conn: asyncpg.Connection) -> int:
    """Local objects that are not deleted (NodeInfo `localPosts`)."""
    return await conn.fetchval("SELECT count(*) FROM objects WHERE is_local AND deleted_at IS NULL")
