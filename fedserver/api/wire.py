"""Wire formats of the Mastodon API: datetimes, dates and ids. Pure."""

from __future__ import annotations

from datetime import datetime, timezone

from ..errors import HTTPError

MAX_ID = 2**63 - 1


def api_datetime(value: datetime) -> str:
    """`2026-11-25T12:34:56.789Z`: UTC with exactly three digits of milliseconds (iOS Toot!, Tusky)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def api_date(value: datetime) -> str:
    """`2026-11-25` (Account.last_status_at)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d")


def api_midnight(value: datetime) -> str:
    """The day as a datetime at midnight UTC, as Mastodon shows Account.created_at."""
    return f"{api_date(value)}T00:00:00.000Z"


def parse_id(raw: str | None, what: str = "id") -> int | None:
    """A numeric string id as an int; None when absent; 400 when not a positive 63-bit integer."""
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or int(raw) > MAX_ID or int(raw) == 0:
        raise HTTPError(400, f"{what} must be a numeric id")
    return int(raw)


def id_or_none(raw: str) -> int | None:
    """A path id as an int, or None when it cannot name anything (so the caller answers 404)."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or int(raw) > MAX_ID:
        return None
    return int(raw)
