"""Small pure helpers shared by the vocabulary modules."""

from __future__ import annotations

from datetime import datetime, timezone


def iso_datetime(value: datetime) -> str:
    """`2026-01-01T00:00:00Z`: UTC, whole seconds, as Mastodon writes `published`."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
