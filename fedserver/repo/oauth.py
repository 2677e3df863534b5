"""SQL for OAuth applications, authorization codes and access tokens (secrets kept as SHA-256 digests)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class OAuthApp:
    id: int
    name: str
    website: str | None
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    client_id: str
    secret_hash: bytes
    created_at: datetime


@dataclass(frozen=True)
class AuthCode:
    app_id: int
    account_id: int
    redirect_uri: str
    scopes: tuple[str, ...]
    code_challenge: str | None


@dataclass(frozen=True)
class AccessToken:
    """A live token with its app and, for user tokens, the account's name."""

    id: int
    app_id: int
    account_id: int | None
    username: str | None
    scopes: tuple[str, ...]
    created_at: datetime


_APP_COLUMNS = "id, name, website, redirect_uris, scopes, client_id, secret_hash, created_at"


def _app(row: asyncpg.Record | None) -> OAuthApp | None:
    if row is None:
        return None
    return OAuthApp(id=row["id"], name=row["name"], website=row["website"],
                    redirect_uris=tuple(row["redirect_uris"]), scopes=tuple(row["scopes"].split()),
                    client_id=row["client_id"], secret_hash=bytes(row["secret_hash"]), created_at=row["created_at"])


async def insert_app(conn: asyncpg.Connection, *, name: str, website: str | None, redirect_uris: list[str],
                     scopes: str, client_id: str, secret_hash: bytes) -> OAuthApp:
    """Register an application."""
    row = await conn.fetchrow(
        f"""INSERT INTO oauth_apps (name, website, redirect_uris, scopes, client_id, secret_hash)
            VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_APP_COLUMNS}""",
        name, website, redirect_uris, scopes, client_id, secret_hash,
    )
    return _app(row)  # type: ignore[return-value]


async def get_app_by_client_id(conn: asyncpg.Connection, client_id: str) -> OAuthApp | None:
    """An application by its public client id."""
    return _app(await conn.fetchrow(f"SELECT {_APP_COLUMNS} FROM oauth_apps WHERE client_id = $1", client_id))


async def get_app_by_id(conn: asyncpg.Connection, app_id: int) -> OAuthApp | None:
    """An application by its row id."""
    return _app(await conn.fetchrow(f"SELECT {_APP_COLUMNS} FROM oauth_apps WHERE id = $1", app_id))


async def insert_code(conn: asyncpg.Connection, *, code_hash: bytes, app_id: int, account_id: int,
                      redirect_uri: str, scopes: str, code_challenge: str | None, ttl_seconds: int) -> None:
    """Store an authorization code that expires after `ttl_seconds`."""
    await conn.execute(
        """INSERT INTO oauth_codes (code_hash, app_id, account_id, redirect_uri, scopes, code_challenge, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))""",
        code_hash, app_id, account_id, redirect_uri, scopes, code_challenge, float(ttl_seconds),
    )


async def consume_code(conn: asyncpg.Connection, code_hash: bytes, app_id: int) -> AuthCode | None:
    """Mark a live code of this app used and return it; None if unknown, expired, used or another app's."""
    row = await conn.fetchrow(
        """UPDATE oauth_codes SET used_at = now()
           WHERE code_hash = $1 AND app_id = $2 AND used_at IS NULL AND expires_at > now()
           RETURNING app_id, account_id, redirect_uri, scopes, code_challenge""",
        code_hash, app_id,
    )
    if row is None:
        return None
    return AuthCode(app_id=row["app_id"], account_id=row["account_id"], redirect_uri=row["redirect_uri"],
                    scopes=tuple(row["scopes"].split()), code_challenge=row["code_challenge"])


async def delete_stale_codes(conn: asyncpg.Connection) -> int:
    """Forget codes that expired more than a day ago."""
    status = await conn.execute("DELETE FROM oauth_codes WHERE expires_at < now() - interval '1 day'")
    return int(status.split()[-1])


async def insert_token(conn: asyncpg.Connection, *, token_hash: bytes, app_id: int, account_id: int | None,
                       scopes: str, code_hash: bytes | None = None) -> datetime:
    """Store an access token (bought with the code `code_hash`, if given); returns its creation time."""
    return await conn.fetchval(
        """WITH token AS (
               INSERT INTO oauth_tokens (token_hash, app_id, account_id, scopes) VALUES ($1, $2, $3, $4)
               RETURNING id, created_at),
           code AS (UPDATE oauth_codes SET token_id = token.id FROM token WHERE code_hash = $5)
           SELECT created_at FROM token""",
        token_hash, app_id, account_id, scopes, code_hash,
    )


async def revoke_token_of_used_code(conn: asyncpg.Connection, code_hash: bytes, app_id: int) -> bool:
    """Revoke the token a code of this app already bought (the code is being used again); False if none."""
    status = await conn.execute(
        """UPDATE oauth_tokens SET revoked_at = now()
           WHERE id = (SELECT token_id FROM oauth_codes WHERE code_hash = $1 AND app_id = $2 AND used_at IS NOT NULL)
             AND revoked_at IS NULL""",
        code_hash, app_id,
    )
    return status.endswith(" 1")


# A token works while it is not revoked and its account (if any) exists, is not suspended and is approved (a
# sign-up waiting for approval has a token from `POST /api/v1/accounts` that starts working once approved).
_LIVE_TOKENS = """oauth_tokens t LEFT JOIN actors a ON a.id = t.account_id
                  LEFT JOIN local_accounts l ON l.actor_id = t.account_id
                  WHERE t.revoked_at IS NULL AND (t.account_id IS NULL OR (
                      a.deleted_at IS NULL AND a.suspended_at IS NULL AND a.is_local AND l.approved))"""


async def live_token_ids(conn: asyncpg.Connection, token_ids: list[int]) -> set[int]:
    """Which of the tokens still work (the streaming API re-checks its open streams with it)."""
    rows = await conn.fetch(f"SELECT t.id FROM {_LIVE_TOKENS} AND t.id = ANY($1::bigint[])", token_ids)
    return {row["id"] for row in rows}


async def get_live_token(conn: asyncpg.Connection, token_hash: bytes) -> AccessToken | None:
    """A token that works (`_LIVE_TOKENS`), by its hash."""
    row = await conn.fetchrow(
        f"SELECT t.id, t.app_id, t.account_id, a.username, t.scopes, t.created_at FROM {_LIVE_TOKENS} "
        "AND t.token_hash = $1",
        token_hash,
    )
    if row is None:
        return None
    return AccessToken(id=row["id"], app_id=row["app_id"], account_id=row["account_id"], username=row["username"],
                       scopes=tuple(row["scopes"].split()), created_at=row["created_at"])


async def revoke_token(conn: asyncpg.Connection, token_hash: bytes, app_id: int) -> bool:
    """Revoke one of this app's tokens; False if there was none live."""
    status = await conn.execute(
        "UPDATE oauth_tokens SET revoked_at = now() WHERE token_hash = $1 AND app_id = $2 AND revoked_at IS NULL",
        token_hash, app_id,
    )
    return status.endswith(" 1")
