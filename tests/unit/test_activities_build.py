"""Outbound activities: addressing per visibility, embedded Undo/Accept, Article fields, sortable ids."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from activities.actor import Actor, local_actor_urls
from activities.build import (
    Mention, activity_uri, address, build_accept, build_announce, build_article, build_create, build_delete,
    build_follow, build_like, build_note, build_undo, build_update_actor, new_object_id, status_uri,
)
from activities.context import PUBLIC
from activities.parse import parse_post, visibility_of
from activities.text import compose_html, find_handles

BASE = "https://shop.test"
WHEN = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
BOB = "https://remote.example/users/bob"


def _actor(name: str = "alice") -> Actor:
    urls = local_actor_urls(BASE, name)
    return Actor(
        id=1, uri=urls.id, is_local=True, username=name, domain="shop.test", actor_type="Person",
        display_name="Alice", summary="", url=urls.url, inbox_uri=urls.inbox, outbox_uri=urls.outbox,
        shared_inbox_uri=urls.shared_inbox, followers_uri=urls.followers, following_uri=urls.following,
        featured_uri=urls.featured, key_id=urls.key_id, public_key_pem="PEM", manually_approves_followers=False,
        discoverable=True, indexable=True, icon_url=None, icon_media_type=None, image_url=None,
        image_media_type=None, created_at=WHEN, updated_at=WHEN, deleted_at=None,
    )


@pytest.mark.parametrize("visibility, to, cc", [
    ("public", [PUBLIC], ["F", BOB]),
    ("unlisted", ["F"], [PUBLIC, BOB]),
    ("private", ["F"], [BOB]),
    ("direct", [BOB], []),
])
def test_addressing_follows_mastodon_for_each_visibility(visibility, to, cc):
    assert address(visibility, "F", [BOB, BOB]) == (to, cc)


def test_addressing_round_trips_through_the_inbound_visibility_rule():
    alice = _actor()
    for visibility in ("public", "unlisted", "private", "direct"):
        to, cc = address(visibility, alice.followers_uri, [BOB])
        note = build_note(alice, id=f"{alice.uri}/statuses/1", content_html="<p>x</p>", published=WHEN, to=to, cc=cc)
        assert visibility_of(note, alice.followers_uri) == visibility


def test_unknown_visibility_is_refused():
    with pytest.raises(ValueError):
        address("friends", "F")


def test_note_carries_author_mentions_and_reply():
    alice = _actor()
    uri = status_uri(alice.uri, "42")
    note = build_note(alice, id=uri, content_html="<p>hi</p>", published=WHEN, to=[PUBLIC], cc=[BOB],
                      in_reply_to="https://remote.example/notes/1",
                      mentions=[Mention(BOB, "@bob@remote.example")])
    assert uri == "https://shop.test/users/alice/statuses/42"
    assert note["type"] == "Note" and note["attributedTo"] == alice.uri and note["published"] == "2026-11-25T12:00:00Z"
    assert note["tag"] == [{"type": "Mention", "href": BOB, "name": "@bob@remote.example"}]
    parsed = parse_post(note, followers_uri=alice.followers_uri)
    assert parsed.in_reply_to == "https://remote.example/notes/1" and parsed.mentions == (BOB,)


def test_article_sets_the_name_summary_and_url_mastodon_shows():
    alice = _actor()
    uri = status_uri(alice.uri, "7")
    article = build_article(alice, id=uri, title="봄 도자기 전시", summary="새 작품 열두 점", content_html="<p>long</p>",
                            url=f"{uri}", published=WHEN, to=[PUBLIC], cc=[alice.followers_uri])
    assert article["type"] == "Article"
    assert (article["name"], article["summary"], article["url"]) == ("봄 도자기 전시", "새 작품 열두 점", uri)
    assert article["content"] == "<p>long</p>"


def test_create_is_addressed_like_its_object_and_embeds_it_without_context():
    alice = _actor()
    note = build_note(alice, id=status_uri(alice.uri, "1"), content_html="x", published=WHEN, to=[PUBLIC],
                      cc=[alice.followers_uri])
    create = build_create(alice.uri, activity_uri(alice.uri, "Create", "1"), note)
    assert create["id"] == "https://shop.test/users/alice/activities/create/1"
    assert create["to"] == [PUBLIC] and create["cc"] == [alice.followers_uri]
    assert create["object"]["id"] == note["id"] and "@context" not in create["object"]
    assert create["@context"] == note["@context"]


def test_undo_embeds_the_undone_activity_so_mastodon_can_switch_on_its_type():
    alice = _actor()
    for undone in (build_follow(alice.uri, f"{alice.uri}/activities/follow/1", BOB),
                   build_like(alice.uri, f"{alice.uri}/activities/like/2", "https://remote.example/n/1", BOB),
                   build_announce(alice.uri, f"{alice.uri}/activities/announce/3", "https://remote.example/n/1",
                                  followers_uri=alice.followers_uri, published=WHEN, object_author=BOB)):
        undo = build_undo(alice.uri, f"{alice.uri}/activities/undo/9", undone)
        assert undo["type"] == "Undo" and undo["actor"] == alice.uri
        assert undo["object"] == {k: v for k, v in undone.items() if k != "@context"}
        assert undo["to"] == undone["to"]


def test_announce_goes_to_public_and_followers_and_the_author():
    alice = _actor()
    boost = build_announce(alice.uri, "A", "https://remote.example/n/1", followers_uri=alice.followers_uri,
                           published=WHEN, object_author=BOB)
    assert boost["to"] == [PUBLIC] and boost["cc"] == [alice.followers_uri, BOB]
    assert boost["object"] == "https://remote.example/n/1"


def test_accept_embeds_the_follow_exactly_as_received():
    follow = {"@context": "https://www.w3.org/ns/activitystreams", "id": "https://remote.example/f/1",
              "type": "Follow", "actor": {"id": BOB, "type": "Person"}, "object": "https://shop.test/users/alice",
              "proof": {"type": "DataIntegrityProof"}}
    accept = build_accept(follow, "https://shop.test/users/alice", "https://shop.test/users/alice#accepts/1")
    assert accept["object"] == {k: v for k, v in follow.items() if k != "@context"}
    assert accept["to"] == [BOB]


def test_delete_sends_a_tombstone_with_its_former_type():
    delete = build_delete("https://shop.test/users/alice", "D", "https://shop.test/users/alice/statuses/1", "Note",
                          to=[PUBLIC])
    assert delete["object"] == {"id": "https://shop.test/users/alice/statuses/1", "type": "Tombstone",
                                "formerType": "Note"}


def test_update_actor_embeds_the_full_actor_document():
    alice = _actor()
    update = build_update_actor(alice, "U", WHEN)
    assert update["object"]["id"] == alice.uri and update["object"]["publicKey"]["owner"] == alice.uri
    assert update["to"] == [PUBLIC] and update["cc"] == [alice.followers_uri]


def test_object_ids_sort_in_time_order_as_numbers_and_as_strings():
    ids = [new_object_id(now_ms=1_780_000_000_000 + step, random_bits=bits)
           for step, bits in ((0, 0xFFFF), (1, 0), (1, 5), (1000, 3), (86_400_000, 0))]
    assert [int(i) for i in ids] == sorted(int(i) for i in ids)
    assert ids == sorted(ids, key=lambda i: (len(i), i))
    assert all(len(i) == len(ids[0]) for i in ids)  # same length now, so plain string order works too
    assert ids == sorted(ids)


def test_object_ids_fit_in_64_bits_and_differ_within_one_millisecond():
    generated = {new_object_id(now_ms=1_780_000_000_000) for _ in range(200)}
    assert len(generated) > 150
    assert all(int(i) < 2**63 for i in generated)
    assert int(new_object_id()) >> 16 > 1_700_000_000_000


def test_typed_text_becomes_paragraphs_links_and_known_mentions():
    text = "안녕 @bob@remote.example!\nsee https://a.example/x.\n\n<b>not html</b> @carol@else.example"
    assert find_handles(text) == [("bob", "remote.example"), ("carol", "else.example")]
    html = compose_html(text, {"@bob@remote.example": (Mention(BOB, "@bob@remote.example"),
                                                      "https://remote.example/@bob")})
    assert html.startswith('<p>안녕 <span class="h-card"><a href="https://remote.example/@bob" class="u-url mention">')
    assert '<a href="https://a.example/x"' in html and "<br>" in html
    assert "&lt;b&gt;not html&lt;/b&gt; @carol@else.example</p>" in html


def test_html_input_is_sanitized():
    assert compose_html('<p>hi<script>alert(1)</script> <a href="javascript:x">y</a></p>', {}) == "<p>hi y</p>"
