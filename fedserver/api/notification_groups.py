"""Grouped notifications (Mastodon 4.3, `GET /api/v2/notifications`): which notifications of a page share a
group, and what each group says. Pure: no I/O.

Mastodon keys a group `<type>-<status id>-<hour bucket>` for favourites and reblogs, `follow-<hour bucket>`
for follows, and `ungrouped-<notification id>` for everything else (`Notification#set_group_key!`). It keeps
a bucket open for up to 12 hours with a Redis counter; without that state, the bucket here is the fixed
12-hour window (counted in hours since the epoch, as Mastodon's) the notification falls in. Groups are made
within the page: a page is a run of consecutive notifications that stops before the one that would open
one group more than asked for, so the next page (from `page_min_id`) continues where this one ended.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..repo.notifications import NotificationRow
from .wire import api_datetime

GROUPABLE = ("favourite", "reblog", "follow")
SPAN_HOURS = 12
MAX_SAMPLE_ACCOUNTS = 8
WITH_STATUS = ("mention", "status", "reblog", "favourite", "update")


def group_key(row: NotificationRow, grouped_types: Iterable[str] = GROUPABLE) -> str:
    """The group a notification belongs to."""
    if row.type not in GROUPABLE or row.type not in grouped_types:
        return f"ungrouped-{row.id}"
    hours = int(row.created_at.timestamp()) // 3600
    bucket = hours - hours % SPAN_HOURS
    target = row.type if row.type == "follow" else f"{row.type}-{row.object_id}"
    return f"{target}-{bucket}"


@dataclass(frozen=True)
class NotificationGroup:
    """The notifications of one group within a page, newest first."""

    key: str
    rows: tuple[NotificationRow, ...]

    @property
    def type(self) -> str:
        return self.rows[0].type

    @property
    def most_recent(self) -> NotificationRow:
        return self.rows[0]

    @property
    def page_min_id(self) -> int:
        return self.rows[-1].id

    @property
    def page_max_id(self) -> int:
        return self.rows[0].id

    @property
    def latest_at(self) -> datetime:
        return self.rows[0].created_at

    @property
    def status_id(self) -> int | None:
        return self.rows[0].object_id if self.type in WITH_STATUS else None

    def sample_account_ids(self) -> list[int]:
        """Up to eight senders, most recent first, each once."""
        return list(dict.fromkeys(r.from_id for r in self.rows))[:MAX_SAMPLE_ACCOUNTS]


def group_page(rows: Sequence[NotificationRow], limit: int,
               grouped_types: Iterable[str] = GROUPABLE) -> list[NotificationGroup]:
    """Up to `limit` groups from `rows` taken in the order read (newest first, or oldest first when paging up
    from `min_id`), stopping before the row that would open one group too many; groups newest first."""
    grouped = tuple(grouped_types)
    found: dict[str, list[NotificationRow]] = {}
    for row in rows:
        key = group_key(row, grouped)
        if key not in found and len(found) >= limit:
            break
        found.setdefault(key, []).append(row)
    groups = [NotificationGroup(key, tuple(sorted(members, key=lambda r: r.id, reverse=True)))
              for key, members in found.items()]
    return sorted(groups, key=lambda g: g.page_max_id, reverse=True)


def page_ids(groups: Sequence[NotificationGroup]) -> list[int]:
    """The ids of every notification the page covers, newest first (for its `Link` header)."""
    return sorted((r.id for g in groups for r in g.rows), reverse=True)


def group_entity(group: NotificationGroup) -> dict:
    """A NotificationGroup as Mastodon serializes it (ids as strings; `status_id` only for types about a post)."""
    body = {
        "group_key": group.key, "notifications_count": len(group.rows), "type": group.type,
        "most_recent_notification_id": str(group.most_recent.id),
        "page_min_id": str(group.page_min_id), "page_max_id": str(group.page_max_id),
        "latest_page_notification_at": api_datetime(group.latest_at),
        "sample_account_ids": [str(i) for i in group.sample_account_ids()],
    }
    if group.status_id is not None:
        body["status_id"] = str(group.status_id)
    return body

