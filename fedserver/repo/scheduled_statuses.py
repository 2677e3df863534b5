"""SQL for scheduled statuses: stored parameters of a post to publish later, claimed by a worker when due.

The worker claims one due row with FOR UPDATE SKIP LOCKED in the transaction that posts it and deletes
the row, so two workers never post the same row and a crash before the commit posts nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from ..media.entity import StoredMedia
from .status_views import Window, window_sql

MAX_SCHEDULED = 300  # Mastodon's total limit per account


@dataclass(frozen=True)
class ScheduledStatus:
    """A post waiting for its time: `params` are the status parameters as the client gave them (parsed)."""

    id: int
    account_id: int
    scheduled_at: datetime
    params: dict
    media_ids: list[int]
    app_id: int | None


_COLUMNS = "id, account_id, scheduled_at, params, media_ids, app_id"
_MEDIA_COLUMNS = ", ".join(StoredMedia.__dataclass_fields__)


def _row(row: asyncpg.Record | None) -> ScheduledStatus | None:
    if row is None:
        return None
    data = dict(row)
    params = data["params"]
    data["params"] = json.loads(params) if isinstance(params, str) else params
    data["media_ids"] = list(data["media_ids"])
    return ScheduledStatus(**data)


class TooMany(Exception):
    """The account already has MAX_SCHEDULED scheduled statuses."""


async def insert_scheduled(conn: asyncpg.Connection, account_id: int, scheduled_at: datetime, params: dict,
                           media_ids: list[int], app_id: int | None, key: str | None) -> ScheduledStatus:
    """Store a scheduled status (the same Idempotency-Key gives the one stored before); TooMany past the limit."""
    if key and (earlier := await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM scheduled_statuses WHERE account_id = $1 AND idempotency_key = $2",
            account_id, key)):
        return _row(earlier)  # type: ignore[return-value]
    row = await conn.fetchrow(
        f"""INSERT INTO scheduled_statuses (account_id, scheduled_at, params, media_ids, app_id, idempotency_key)
            SELECT $1, $2, $3::jsonb, $4::bigint[], $5, $6
            WHERE (SELECT count(*) FROM scheduled_statuses WHERE account_id = $1) < {MAX_SCHEDULED}
            ON CONFLICT (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
            RETURNING {_COLUMNS}""",
        account_id, scheduled_at, params, media_ids, app_id, key)
    if row is None:
        if key and (earlier := await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM scheduled_statuses WHERE account_id = $1 AND idempotency_key = $2",
                account_id, key)):
            return _row(earlier)  # type: ignore[return-value]
        raise TooMany()
    return _row(row)  # type: ignore[return-value]


async def get_own_scheduled(conn: asyncpg.Connection, account_id: int, scheduled_id: int) -> ScheduledStatus | None:
    return _row(await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM scheduled_statuses WHERE id = $1 AND account_id = $2", scheduled_id, account_id))


async def read_scheduled(conn: asyncpg.Connection, account_id: int, window: Window) -> list[ScheduledStatus]:
    """The account's scheduled statuses, latest scheduled first by id (Mastodon pages them by id)."""
    bounds, order = window_sql("id", 2, window)
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM scheduled_statuses WHERE account_id = $1 AND {bounds} {order}",
        account_id, *window.params())
    return [_row(r) for r in rows]  # type: ignore[misc]


async def reschedule(conn: asyncpg.Connection, account_id: int, scheduled_id: int,
                     scheduled_at: datetime) -> ScheduledStatus | None:
    return _row(await conn.fetchrow(
        f"""UPDATE scheduled_statuses SET scheduled_at = $3 WHERE id = $1 AND account_id = $2
            RETURNING {_COLUMNS}""",
        scheduled_id, account_id, scheduled_at))


async def delete_scheduled(conn: asyncpg.Connection, account_id: int, scheduled_id: int) -> bool:
    status = await conn.execute("DELETE FROM scheduled_statuses WHERE id = $1 AND account_id = $2",
                                scheduled_id, account_id)
    return not status.endswith(" 0")


async def claim_due(conn: asyncpg.Connection) -> tuple[ScheduledStatus, str] | None:
    """(the oldest due row, its author's username), locked for the caller's transaction; None when none is due
    (or every due one is being published by another worker)."""
    row = await conn.fetchrow(
        f"""SELECT {', '.join('s.' + c.strip() for c in _COLUMNS.split(','))}, a.username
            FROM scheduled_statuses s JOIN actors a ON a.id = s.account_id AND a.is_local AND a.deleted_at IS NULL
            WHERE s.scheduled_at <= now() ORDER BY s.scheduled_at, s.id
            LIMIT 1 FOR UPDATE OF s SKIP LOCKED""")
    if row is None:
        return None
    data = dict(row)
    username = data.pop("username")
    return _row(data), username  # type: ignore[return-value,arg-type]


async def delete_claimed(conn: asyncpg.Connection, scheduled_id: int) -> None:
    await conn.execute("DELETE FROM scheduled_statuses WHERE id = $1", scheduled_id)


async def own_unattached_media(conn: asyncpg.Connection, account_id: int, media_ids: list[int]) -> dict[int, StoredMedia]:
    """The account's uploads among `media_ids` not yet attached to a post, by id."""
    if not media_ids:
        return {}
    rows = await conn.fetch(
        f"""SELECT {_MEDIA_COLUMNS} FROM media_attachments
            WHERE id = ANY($1::bigint[]) AND account_id = $2 AND object_id IS NULL""",
        media_ids, account_id)
    return {r["id"]: StoredMedia(**dict(r)) for r in rows}


async def postpone(conn: asyncpg.Connection, scheduled_id: int, seconds: float) -> None:
    """Move a claimed row `seconds` into the future (its publishing failed unexpectedly)."""
    await conn.execute("UPDATE scheduled_statuses SET scheduled_at = now() + make_interval(secs => $2) WHERE id = $1",
                       scheduled_id, float(seconds))
