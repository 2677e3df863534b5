"""Pure parts of statuses: mentions, hashtags, character counting, the Note extras and the Status entity."""

from __future__ import annotations

from datetime import datetime, timezone

from activities.build import NoteExtras, build_note
from activities.text import compose_html, find_hashtags, find_mentions, normalize_hashtag, tag_hashtags
from fedserver.api import status_entities as se
from fedserver.api.status_input import count_characters
from fedserver.repo.status_views import StatusRow
from tests.unit.test_activities_build import _actor

WHEN = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=timezone.utc)


def test_bare_mentions_are_local_and_full_handles_keep_their_domain():
    text = "hi @bob and @Carol@Remote.Example, mail a@b.c and @bob again"
    assert find_mentions(text, "shop.test") == [("@bob", "bob", "shop.test"),
                                                ("@carol@remote.example", "Carol", "remote.example")]


def test_hashtags_are_normalised_korean_included():
    assert find_hashtags("#도자기 #Pottery #ＰＯＴＴＥＲＹ #123 C#sharp url/#x #도자기") == ["도자기", "pottery"]
    assert normalize_hashtag("#Ａｂｃ") == "abc" and normalize_hashtag("#12") is None
    assert normalize_hashtag("#" + "x" * 101) is None and normalize_hashtag("#a-b") is None
    tags = [{"type": "Hashtag", "name": "#Kiln"}, {"type": "Mention", "name": "@x"}, {"type": "Hashtag"}, "junk"]
    assert tag_hashtags(tags) == ["kiln"] and tag_hashtags(None) == []


def test_hashtags_link_to_the_tag_page_and_urls_keep_their_fragment():
    html = compose_html("새 #도자기 see https://a.example/#frag", {}, tags_base="https://shop.test/tags/")
    assert '<a href="https://shop.test/tags/%EB%8F%84%EC%9E%90%EA%B8%B0" class="mention hashtag" rel="tag">' in html
    assert '<a href="https://a.example/#frag"' in html
    assert "#" in compose_html("no base #tag", {}) and "hashtag" not in compose_html("no base #tag", {})


def test_characters_count_urls_as_23_and_remote_handles_by_name():
    assert count_characters("https://example.com/" + "a" * 100) == 23
    assert count_characters("@bob@remote.example hi") == len("@bob hi")


def test_note_extras_add_the_content_warning_language_hashtags_and_attachments():
    note = build_note(_actor(), id="https://shop.test/users/alice/statuses/1", content_html="<p>x</p>",
                      published=WHEN, to=[], cc=[],
                      extras=NoteExtras(summary="cw", language="ko", hashtags=(("도자기", "https://t/1"),),
                                        attachments=({"type": "Document", "url": "https://m/1.png"},)))
    assert note["summary"] == "cw" and note["sensitive"] is True and note["contentMap"] == {"ko": "<p>x</p>"}
    assert note["tag"] == [{"type": "Hashtag", "href": "https://t/1", "name": "#도자기"}]
    assert note["attachment"][0]["url"] == "https://m/1.png"


def _row(**changes) -> StatusRow:
    base = dict(id=5, uri="https://r.example/n/5", url=None, object_type="Note", actor_id=2, is_local=False,
                content="<p>body</p>", name=None, summary="<p>careful &amp; kind</p>", visibility="public",
                data={"sensitive": False, "contentMap": {"en": "<p>body</p>"}}, published_at=WHEN, updated_at=None,
                in_reply_to_id=3, in_reply_to_account_id=4, replies_count=1, reblogs_count=2, favourites_count=3,
                favourited=True, reblogged=False, bookmarked=False, pinned=False, source_text=None,
                source_spoiler=None, app_name=None, app_website=None)
    return StatusRow(**{**base, **changes})


def test_status_entity_of_a_remote_note():
    body = se.status(_row(), account={"id": "2"}, mentions=[], tags=[], media=[], signed_in=True)
    assert body["created_at"] == "2026-11-25T12:00:00.123Z" and body["url"] == "https://r.example/n/5"
    assert body["spoiler_text"] == "careful & kind" and body["sensitive"] is True and body["language"] == "en"
    assert (body["in_reply_to_id"], body["in_reply_to_account_id"]) == ("3", "4")
    assert body["favourited"] is True and body["application"] is None and body["filtered"] == []
    anonymous = se.status(_row(), account={"id": "2"}, mentions=[], tags=[], media=[], signed_in=False)
    assert "favourited" not in anonymous and "pinned" not in anonymous


def test_status_entity_of_an_article_shows_its_title():
    body = se.status(_row(object_type="Article", name="봄 <전시>", summary="요약"), account={}, mentions=[],
                     tags=[], media=[], signed_in=False)
    assert body["content"] == "<p><strong>봄 &lt;전시&gt;</strong></p><p>body</p>" and body["spoiler_text"] == ""


def test_tags_and_sources():
    assert se.tag("도자기", "https://shop.test") == {"name": "도자기",
                                                     "url": "https://shop.test/tags/%EB%8F%84%EC%9E%90%EA%B8%B0"}
    assert se.source_text(_row(source_text="typed *text*")) == "typed *text*"
    assert se.source_text(_row()) == "body"
