"""Lists, followed hashtags, trends from the open ranking and scheduled statuses, over real HTTP and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fedserver.api import trend_rules, trends
from fedserver.api.scheduled_worker import publish_due
from fedserver.federation import commands
from tests.api.schemas import check_status
from tests.api.status_support import bob_auth, count, get_json, post  # noqa: F401 (fixtures)

COUNTS = {"lists": "SELECT count(*) FROM lists", "members": "SELECT count(*) FROM list_accounts",
          "scheduled": "SELECT count(*) FROM scheduled_statuses", "posts": "SELECT count(*) FROM objects"}


async def _send(client, method: str, path: str, auth: dict, *, expect: int = 200, **json):
    response = await client.request(method, path, headers=auth, json=json or None)
    body = await response.json()
    assert response.status == expect, body
    assert response.content_type == "application/json"
    return body


@pytest.fixture
async def dave(pool, settings, alice):
    from fedserver.accounts import create_account, validate_new_account

    return await create_account(pool, settings, validate_new_account(username="dave"))


# Lists


async def test_list_crud_with_mastodon_answers(client, auth, pool):
    assert await get_json(client, "/api/v1/lists", auth) == []
    made = await _send(client, "POST", "/api/v1/lists", auth, title="  도자기 친구들 ")
    assert made == {"id": made["id"], "title": "도자기 친구들", "replies_policy": "list", "exclusive": False}
    assert await get_json(client, f"/api/v1/lists/{made['id']}", auth) == made
    changed = await _send(client, "PUT", f"/api/v1/lists/{made['id']}", auth, replies_policy="none", exclusive=True)
    assert changed == {**made, "replies_policy": "none", "exclusive": True}
    assert await get_json(client, "/api/v1/lists", auth) == [changed]
    assert await _send(client, "DELETE", f"/api/v1/lists/{made['id']}", auth) == {}
    await get_json(client, f"/api/v1/lists/{made['id']}", auth, expect=404)
    assert await count(pool, COUNTS["lists"]) == 0


@pytest.mark.parametrize(("fields", "message"), [
    ({}, "Title can't be blank"),
    ({"title": "   "}, "Title can't be blank"),
    ({"title": "x" * 201}, "too long"),
    ({"title": "ok", "replies_policy": "everyone"}, "replies_policy must be one of"),
    ({"title": "ok", "exclusive": "maybe"}, "must be a boolean"),
])
async def test_bad_list_input_is_refused_and_nothing_is_stored(client, auth, pool, fields, message):
    body = await _send(client, "POST", "/api/v1/lists", auth, expect=422, **fields)
    assert message in body["error"]
    assert await count(pool, COUNTS["lists"]) == 0


async def test_only_followed_accounts_join_a_list_and_the_timeline_shows_only_members(
        client, auth, bob_auth, pool, publisher, bob, dave):
    await commands.follow(pool, publisher, None, "alice", bob.uri)
    made = await _send(client, "POST", "/api/v1/lists", auth, title="makers")
    path = f"/api/v1/lists/{made['id']}/accounts"
    refused = await _send(client, "POST", path, auth, expect=422, account_ids=[str(bob.id), str(dave.id)])
    assert "follow" in refused["error"] and await count(pool, COUNTS["members"]) == 0
    await _send(client, "POST", path, auth, expect=422, account_ids=["abc"])
    await _send(client, "POST", path, auth, expect=422)
    assert await _send(client, "POST", path, auth, account_ids=[str(bob.id)]) == {}
    assert [a["id"] for a in await get_json(client, path, auth)] == [str(bob.id)]
    assert await get_json(client, f"/api/v1/accounts/{bob.id}/lists", auth) == [made]
    assert await get_json(client, f"/api/v1/accounts/{dave.id}/lists", auth) == []

    mine = await post(client, auth, "alice is not in her list")
    first = await post(client, bob_auth, "bob one")
    second = await post(client, bob_auth, "bob two")
    hidden = await post(client, bob_auth, "bob to himself", visibility="direct")
    timeline = await get_json(client, f"/api/v1/timelines/list/{made['id']}", auth)
    for status in timeline:
        check_status(status)
    assert [s["id"] for s in timeline] == [second["id"], first["id"]]
    assert mine["id"] not in [s["id"] for s in timeline] and hidden["id"] not in [s["id"] for s in timeline]
    paged = await client.get(f"/api/v1/timelines/list/{made['id']}", headers=auth, params={"limit": "1"})
    assert [s["id"] for s in await paged.json()] == [second["id"]] and 'rel="next"' in paged.headers["Link"]

    # A mute hides the member's posts; an unfollow takes the member out of the list.
    await _send(client, "POST", f"/api/v1/accounts/{bob.id}/mute", auth)
    assert await get_json(client, f"/api/v1/timelines/list/{made['id']}", auth) == []
    await _send(client, "POST", f"/api/v1/accounts/{bob.id}/unmute", auth)
    assert await _send(client, "DELETE", path, auth, account_ids=[str(bob.id)]) == {}
    assert await get_json(client, path, auth) == []
    await _send(client, "POST", path, auth, account_ids=[str(bob.id)])
    await commands.unfollow(pool, publisher, "alice", bob.uri)
    assert await get_json(client, path, auth) == [] and await count(pool, COUNTS["members"]) == 0


async def test_another_persons_list_is_not_found(client, auth, bob_auth, pool):
    theirs = await _send(client, "POST", "/api/v1/lists", bob_auth, title="bob's")
    for method, suffix in (("GET", ""), ("PUT", ""), ("DELETE", ""), ("GET", "/accounts")):
        body = await _send(client, method, f"/api/v1/lists/{theirs['id']}{suffix}", auth, expect=404,
                           **({"title": "mine now"} if method == "PUT" else {}))
        assert body == {"error": "Record not found"}
    await get_json(client, f"/api/v1/timelines/list/{theirs['id']}", auth, expect=404)
    await get_json(client, "/api/v1/timelines/list/not-a-number", auth, expect=404)
    assert (await get_json(client, f"/api/v1/lists/{theirs['id']}", bob_auth))["title"] == "bob's"


async def test_an_exclusive_list_keeps_its_members_out_of_home(client, auth, bob_auth, pool, publisher, bob):
    await commands.follow(pool, publisher, None, "alice", bob.uri)
    made = await _send(client, "POST", "/api/v1/lists", auth, title="quiet", exclusive=True)
    await _send(client, "POST", f"/api/v1/lists/{made['id']}/accounts", auth, account_ids=[str(bob.id)])
    status = await post(client, bob_auth, "only in the list")
    assert status["id"] not in [s["id"] for s in await get_json(client, "/api/v1/timelines/home", auth)]
    assert [s["id"] for s in await get_json(client, f"/api/v1/timelines/list/{made['id']}", auth)] == [status["id"]]


# Followed hashtags


async def test_a_followed_tag_brings_posts_of_strangers_home_until_unfollowed(client, auth, bob_auth, pool):
    tag = await get_json(client, "/api/v1/tags/Pottery", auth)
    assert tag["name"] == "pottery" and tag["following"] is False and len(tag["history"]) == 7
    followed = await _send(client, "POST", "/api/v1/tags/%23Pottery/follow", auth)
    assert followed["following"] is True
    assert await _send(client, "POST", "/api/v1/tags/pottery/follow", auth) == followed  # idempotent
    assert [t["name"] for t in await get_json(client, "/api/v1/followed_tags", auth)] == ["pottery"]

    tagged = await post(client, bob_auth, "new bowls #pottery")
    untagged = await post(client, bob_auth, "no tag here")
    quiet = await post(client, bob_auth, "followers only #pottery", visibility="private")
    home = [s["id"] for s in await get_json(client, "/api/v1/timelines/home", auth)]
    assert home == [tagged["id"]] and untagged["id"] not in home and quiet["id"] not in home
    today = (await get_json(client, "/api/v1/tags/pottery", auth))["history"][0]
    assert today["uses"] == "1" and today["accounts"] == "1"

    unfollowed = await _send(client, "POST", "/api/v1/tags/pottery/unfollow", auth)
    assert unfollowed["following"] is False and await get_json(client, "/api/v1/followed_tags", auth) == []
    later = await post(client, bob_auth, "more #pottery")
    assert later["id"] not in [s["id"] for s in await get_json(client, "/api/v1/timelines/home", auth)]
    body = await _send(client, "POST", "/api/v1/tags/not%20a%20tag/follow", auth, expect=404)
    assert body == {"error": "Record not found"}


async def test_a_followed_tag_never_crosses_a_block(client, auth, bob_auth, pool, bob):
    await _send(client, "POST", "/api/v1/tags/pottery/follow", auth)
    await _send(client, "POST", f"/api/v1/accounts/{bob.id}/block", auth)
    blocked = await post(client, bob_auth, "blocked #pottery")
    assert blocked["id"] not in [s["id"] for s in await get_json(client, "/api/v1/timelines/home", auth)]


# Trends from the open ranking


def test_trending_tags_are_weighted_by_the_ranking_scores_of_their_posts():
    ranking = {"ranking": [{"object": "https://a/1", "score": 30}, {"object": "https://a/2", "score": 20},
                           {"object": "https://a/3", "score": 15}, {"object": "https://a/1", "score": 99},
                           {"object": 5, "score": 1}, {"maker": "https://a/@x", "score": 9}]}
    scores = trend_rules.ranked_objects(ranking)
    assert scores == [("https://a/1", 30), ("https://a/2", 20), ("https://a/3", 15)]
    tags = {"https://a/1": ["pottery"], "https://a/2": ["bakery", "pottery"], "https://a/3": ["bakery", "tea"]}
    assert trend_rules.weigh_tags(scores, tags) == [("pottery", 50, 2), ("bakery", 35, 2), ("tea", 15, 1)]
    assert trend_rules.ranked_objects(None) == [] and trend_rules.ranked_objects({"ranking": "x"}) == []


async def test_trends_are_empty_without_a_ranking(client, auth):
    for path in ("/api/v1/trends", "/api/v1/trends/tags", "/api/v1/trends/statuses"):
        assert await get_json(client, path) == []
        assert await get_json(client, path, auth) == []
    await get_json(client, "/api/v1/trends/statuses", expect=400, offset="-1")


async def test_trends_follow_the_ranking_and_what_the_reader_may_see(client, auth, bob_auth, pool, bob, monkeypatch):
    first = await post(client, bob_auth, "best bowl #pottery #tea")
    second = await post(client, auth, "bread #bakery")
    hidden = await post(client, bob_auth, "private #secret", visibility="private")
    uris = {s["id"]: (await count(pool, "SELECT uri FROM objects WHERE id = $1", int(s["id"])))
            for s in (first, second, hidden)}
    document = {"ranking": [{"rank": 1, "object": uris[second["id"]], "score": 40},
                            {"rank": 2, "object": "https://elsewhere.example/unknown", "score": 35},
                            {"rank": 3, "object": uris[first["id"]], "score": 30},
                            {"rank": 4, "object": uris[hidden["id"]], "score": 20}]}

    async def fake_ranking(request, kind, window="7d"):
        assert kind == "posts"
        return document

    monkeypatch.setattr(trends, "live_ranking", fake_ranking)
    statuses = await get_json(client, "/api/v1/trends/statuses")
    assert [s["id"] for s in statuses] == [second["id"], first["id"]]
    assert [s["id"] for s in await get_json(client, "/api/v1/trends/statuses", offset="1", limit="1")] == [first["id"]]
    tags = await get_json(client, "/api/v1/trends/tags", auth)
    assert [t["name"] for t in tags] == ["bakery", "pottery", "tea"]
    assert tags[0]["following"] is False and len(tags[0]["history"]) == 7
    assert await get_json(client, "/api/v1/trends", limit="1") == [{k: v for k, v in tags[0].items()
                                                                    if k != "following"}]
    await _send(client, "POST", f"/api/v1/accounts/{bob.id}/mute", auth)
    assert [s["id"] for s in await get_json(client, "/api/v1/trends/statuses", auth)] == [second["id"]]


# Scheduled statuses


def _ahead(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(("when", "message"), [
    (None, "at least 5 minutes"), ("2020-01-01T00:00:00Z", "at least 5 minutes"), ("tomorrow", "ISO 8601"),
])
async def test_a_status_scheduled_too_soon_or_unreadably_is_refused(client, auth, pool, when, message):
    body = await _send(client, "POST", "/api/v1/statuses", auth, expect=422, status="soon",
                       scheduled_at=when or _ahead(4))
    assert message in body["error"]
    assert await count(pool, COUNTS["scheduled"]) == 0 and await count(pool, COUNTS["posts"]) == 0


async def test_scheduled_statuses_are_listed_moved_and_deleted(client, auth, bob_auth, pool):
    when = _ahead(60)
    made = await _send(client, "POST", "/api/v1/statuses", auth, status="later #pottery", scheduled_at=when,
                       visibility="unlisted", spoiler_text="cw")
    assert set(made) == {"id", "scheduled_at", "params", "media_attachments"}
    assert made["params"]["text"] == "later #pottery" and made["params"]["visibility"] == "unlisted"
    assert made["params"]["spoiler_text"] == "cw" and made["media_attachments"] == []
    assert made["scheduled_at"].endswith("Z") and await count(pool, COUNTS["posts"]) == 0
    assert [s["id"] for s in await get_json(client, "/api/v1/scheduled_statuses", auth)] == [made["id"]]
    assert await get_json(client, "/api/v1/scheduled_statuses", bob_auth) == []
    await get_json(client, f"/api/v1/scheduled_statuses/{made['id']}", bob_auth, expect=404)

    moved = await _send(client, "PUT", f"/api/v1/scheduled_statuses/{made['id']}", auth, scheduled_at=_ahead(120))
    assert moved["scheduled_at"] > made["scheduled_at"] and moved["params"] == made["params"]
    await _send(client, "PUT", f"/api/v1/scheduled_statuses/{made['id']}", auth, expect=422,
                scheduled_at=_ahead(1))
    assert (await get_json(client, f"/api/v1/scheduled_statuses/{made['id']}", auth))["scheduled_at"] == \
        moved["scheduled_at"]
    await _send(client, "DELETE", f"/api/v1/scheduled_statuses/{made['id']}", bob_auth, expect=404)
    assert await _send(client, "DELETE", f"/api/v1/scheduled_statuses/{made['id']}", auth) == {}
    assert await get_json(client, "/api/v1/scheduled_statuses", auth) == []
    assert await count(pool, COUNTS["scheduled"]) == 0


async def test_a_bad_scheduled_post_is_refused_when_scheduling(client, auth, pool):
    await _send(client, "POST", "/api/v1/statuses", auth, expect=422, status="  ", scheduled_at=_ahead(60))
    await _send(client, "POST", "/api/v1/statuses", auth, expect=422, status="x", media_ids=["999"],
                scheduled_at=_ahead(60))
    await _send(client, "POST", "/api/v1/statuses", auth, expect=404, status="x", in_reply_to_id="999999",
                scheduled_at=_ahead(60))
    assert await count(pool, COUNTS["scheduled"]) == 0


async def test_the_worker_publishes_a_due_status_exactly_once(client, auth, pool, publisher):
    made = await _send(client, "POST", "/api/v1/statuses", auth, status="on time #pottery", scheduled_at=_ahead(30))
    again = await client.post("/api/v1/statuses", headers={**auth, "Idempotency-Key": "s1"},
                              json={"status": "keyed", "scheduled_at": _ahead(30)})
    repeat = await client.post("/api/v1/statuses", headers={**auth, "Idempotency-Key": "s1"},
                               json={"status": "keyed", "scheduled_at": _ahead(30)})
    assert (await again.json())["id"] == (await repeat.json())["id"]
    assert await publish_due(pool, publisher) == 0  # nothing due yet
    async with pool.acquire() as conn:
        await conn.execute("UPDATE scheduled_statuses SET scheduled_at = now() - interval '1 minute' WHERE id = $1",
                           int(made["id"]))
    assert await publish_due(pool, publisher) == 1
    assert await publish_due(pool, publisher) == 0
    assert await count(pool, COUNTS["scheduled"]) == 1  # the keyed one still waits
    assert await count(pool, "SELECT count(*) FROM objects WHERE content LIKE '%on time%'") == 1
    home = await get_json(client, "/api/v1/timelines/home", auth)
    assert [s["content"] for s in home if "on time" in s["content"]] and home[0]["visibility"] == "public"
    assert await count(pool, "SELECT count(*) FROM activities WHERE activity_type = 'Create'") == 1


async def test_a_scheduled_reply_whose_parent_is_gone_is_dropped_without_a_post(client, auth, pool, publisher):
    parent = await post(client, auth, "parent")
    made = await _send(client, "POST", "/api/v1/statuses", auth, status="reply", in_reply_to_id=parent["id"],
                       scheduled_at=_ahead(30))
    await _send(client, "DELETE", f"/api/v1/statuses/{parent['id']}", auth)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE scheduled_statuses SET scheduled_at = now() WHERE id = $1", int(made["id"]))
    assert await publish_due(pool, publisher) == 1
    assert await count(pool, COUNTS["scheduled"]) == 0
    assert await count(pool, "SELECT count(*) FROM objects WHERE content LIKE '%reply%'") == 0
