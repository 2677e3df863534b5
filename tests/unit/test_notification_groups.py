"""Grouping notifications as Mastodon 4.3 does (GET /api/v2/notifications): keys, page runs, entities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fedserver.api.notification_groups import group_entity, group_key, group_page, page_ids
from fedserver.repo.notifications import NotificationRow

NOON = datetime(2026, 12, 7, 12, 30, tzinfo=UTC)


def row(id: int, type: str, from_id: int = 1, object_id: int | None = 100, at: datetime = NOON) -> NotificationRow:
    return NotificationRow(id=id, type=type, from_id=from_id, object_id=object_id, created_at=at)


def test_keys_follow_mastodon_names():
    bucket = int(NOON.timestamp()) // 3600 // 12 * 12
    assert group_key(row(1, "favourite")) == f"favourite-100-{bucket}"
    assert group_key(row(2, "reblog", object_id=7)) == f"reblog-7-{bucket}"
    assert group_key(row(3, "follow", object_id=None)) == f"follow-{bucket}"
    assert group_key(row(4, "mention")) == "ungrouped-4"
    assert group_key(row(5, "favourite"), grouped_types=("reblog",)) == "ungrouped-5"


def test_favourites_of_one_post_within_twelve_hours_share_a_group():
    start = NOON.replace(minute=0)  # 12:00 UTC starts a window
    later = start + timedelta(hours=11, minutes=59)
    assert group_key(row(1, "favourite", at=start)) == group_key(row(2, "favourite", at=later))
    assert group_key(row(1, "favourite")) != group_key(row(2, "favourite", at=NOON + timedelta(hours=12)))
    assert group_key(row(1, "favourite", object_id=1)) != group_key(row(2, "favourite", object_id=2))


def test_a_page_groups_newest_first_and_stops_before_one_group_too_many():
    rows = [row(9, "favourite", 3), row(8, "mention", 2), row(7, "favourite", 2), row(6, "favourite", 1),
            row(5, "follow", 4, None), row(4, "favourite", 5)]
    groups = group_page(rows, limit=2)
    assert [(g.type, [r.id for r in g.rows]) for g in groups] == [("favourite", [9, 7, 6]), ("mention", [8])]
    assert page_ids(groups) == [9, 8, 7, 6]
    liked = group_entity(groups[0])
    assert liked["notifications_count"] == 3 and liked["sample_account_ids"] == ["3", "2", "1"]
    assert (liked["page_min_id"], liked["page_max_id"], liked["most_recent_notification_id"]) == ("6", "9", "9")
    assert liked["status_id"] == "100" and liked["latest_page_notification_at"].endswith("Z")
    assert "status_id" not in group_entity(group_page([row(1, "follow", object_id=None)], limit=1)[0])


def test_paging_up_from_min_id_keeps_the_oldest_run():
    ascending = [row(1, "favourite", 2), row(2, "mention"), row(3, "favourite", 3), row(4, "reblog")]
    groups = group_page(ascending, limit=2)
    assert [[r.id for r in g.rows] for g in groups] == [[3, 1], [2]]


def test_sample_accounts_are_distinct_and_at_most_eight():
    rows = [row(i, "favourite", from_id=i % 10) for i in range(40, 0, -1)]
    [group] = group_page(rows, limit=5)
    assert len(group.rows) == 40 and group.sample_account_ids() == [0, 9, 8, 7, 6, 5, 4, 3]
