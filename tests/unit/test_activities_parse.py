"""Pure parsing of inbound documents: ids, hosts, limits, visibility."""

import pytest

from activities.parse import ParseError, check_shape, parse_activity, parse_actor, parse_post, visibility_of
from activities.urls import BadId, id_host, same_origin

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


@pytest.mark.parametrize(("url", "host"), [
    ("https://Mastodon.Social/users/a", "mastodon.social"),
    ("https://mastodon.social./users/a", "mastodon.social"),
    ("https://mastodon.social:443/users/a", "mastodon.social"),
    ("http://127.0.0.1:8001/users/a", "127.0.0.1:8001"),
    ("https://bücher.example/u", "xn--bcher-kva.example"),
    ("https://[::1]:8443/x", "[::1]:8443"),
])
def test_id_host_normalises_one_way(url, host):
    assert id_host(url) == host


@pytest.mark.parametrize("url", [
    "mastodon.social/users/a", "ftp://x.example/", "https://user@x.example/", "https://a:b@x.example/",
    "https:///nohost", "https://x.example:99999/", "javascript:alert(1)", "x" * 3000,
])
def test_id_host_refuses_what_cannot_be_an_id(url):
    with pytest.raises(BadId):
        id_host(url)


def _full_path(url):
    from activities.urls import _id_host
    try:
        return _id_host.__wrapped__(url)
    except BadId:
        return BadId


def _fast_or_full(url):
    try:
        return id_host(url)
    except BadId:
        return BadId


@pytest.mark.parametrize("url", [
    "https://a.example/x", "https://a.example", "https://a.example?q", "https://a.example#f",
    "https://a.example:443/x", "http://a.example:80", "http://a.example:0080/", "https://a.example:8443/x",
    "https://a.example:65535/", "https://a.example:65536/", "https://a.example:/x", "https://a.example./x",
    "https://a..example/x", "https://-a.example/x", "https://a.example@b.example/x", "https://a.example\\@b/",
    "https://a.example\n.evil/x", "https://a.example/\n", " https://a.example/", "https://a_b.example/",
    "HTTPS://a.example/", "https://A.example/", "https://a.example:99/x:1", "https://1.2.3.4:5/",
])
def test_id_host_fast_path_agrees_with_urlsplit(url):
    assert _fast_or_full(url) == _full_path(url)


def test_id_host_fast_path_agrees_with_urlsplit_on_random_urls():
    import random

    rng = random.Random(42)
    alphabet = "ab09.-:/?#@[]_\\ \tA%"
    for _ in range(20_000):
        url = rng.choice(["http://", "https://", "HTTP://", "https:/"]) + "".join(
            rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert _fast_or_full(url) == _full_path(url), url


def test_p0_07_host_tricks_never_match():
    """CVE-2023-42451: `mastodon.so/cial` must not equal `mastodon.social`."""
    assert not same_origin("https://mastodon.so/cial/users/a", "https://mastodon.social/users/a")
    assert not same_origin("https://mastodon.social@evil.example/a", "https://mastodon.social/a")
    assert not same_origin("https://mastodon.social.evil.example/a", "https://mastodon.social/a")
    assert same_origin("https://MASTODON.social./a", "https://mastodon.social/b")


def _activity(**overrides):
    doc = {"id": "https://r.example/a/1", "type": "Like", "actor": "https://r.example/u/x",
           "object": "https://shop.example/s/1"}
    doc.update(overrides)
    return doc


def test_parse_activity_takes_embedded_or_referenced_objects():
    act = parse_activity(_activity(actor={"id": "https://r.example/u/x", "type": "Person"}))
    assert act.actor == "https://r.example/u/x" and act.object_id == "https://shop.example/s/1"
    embedded = parse_activity(_activity(type="Undo", object={"id": "https://r.example/a/0", "type": "Like"}))
    assert embedded.object_type == "Like"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"id": None}, "`id` is required"),
    ({"actor": "not a url"}, "`actor`"),
    ({"type": ""}, "`type`"),
    ({"object": [1, 2]}, "several objects"),
    ({"to": [f"https://x.example/{i}" for i in range(5001)]}, "recipients"),
])
def test_parse_activity_refuses_bad_envelopes(overrides, message):
    with pytest.raises(ParseError, match=message):
        parse_activity(_activity(**overrides))


def test_check_shape_bounds_depth_without_recursion():
    deep: dict = {}
    cursor = deep
    for _ in range(5000):
        cursor["a"] = {}
        cursor = cursor["a"]
    with pytest.raises(ParseError, match="nested deeper"):
        check_shape(deep)


@pytest.mark.parametrize("depth", [1, 2, 31, 32, 33, 40])
@pytest.mark.parametrize("container", [dict, list])
def test_bracket_count_skips_the_walk_only_when_depth_is_provably_fine(depth, container):
    import json

    from activities.parse import MAX_DEPTH, cannot_nest_too_deep

    doc: dict = {"type": "Create"}
    cursor: dict | list = doc
    for _ in range(depth - 1):
        child: dict | list = container()
        if isinstance(cursor, dict):
            cursor["o"] = child
        else:
            cursor.append(child)
        cursor = child
    text = json.dumps(doc)
    assert cannot_nest_too_deep(text) == cannot_nest_too_deep(text.encode())
    if depth > MAX_DEPTH:
        assert not cannot_nest_too_deep(text)
        with pytest.raises(ParseError):
            check_shape(doc)
    else:
        check_shape(doc)
        assert cannot_nest_too_deep(text) == (depth <= MAX_DEPTH)


def test_visibility_follows_mastodon():
    followers = "https://r.example/u/x/followers"
    assert visibility_of({"to": [PUBLIC]}, followers) == "public"
    assert visibility_of({"to": [followers], "cc": ["as:Public"]}, followers) == "unlisted"
    assert visibility_of({"to": [followers]}, followers) == "private"
    assert visibility_of({"to": ["https://shop.example/users/a"]}, followers) == "direct"


def test_parse_post_sanitizes_and_truncates():
    post = parse_post({"id": "https://r.example/n/1", "type": "Note", "attributedTo": "https://r.example/u/x",
                       "content": '<p onclick="x()">hi<script>alert(1)</script></p>', "to": PUBLIC,
                       "name": "n" * 500, "tag": [{"type": "Mention", "href": "https://shop.example/users/a"}]})
    assert post.content == "<p>hi</p>"
    assert len(post.name) == 100
    assert post.mentions == ("https://shop.example/users/a",)
    with pytest.raises(ParseError, match="unsupported object type"):
        parse_post({"id": "https://r.example/n/2", "type": "Image", "attributedTo": "https://r.example/u/x"})


def test_parse_actor_requires_a_key_owned_by_the_actor():
    doc = {"id": "https://r.example/u/x", "type": "Person", "preferredUsername": "x",
           "inbox": "https://r.example/u/x/inbox",
           "publicKey": {"id": "https://r.example/u/x#main-key", "owner": "https://r.example/u/x",
                         "publicKeyPem": "PEM"}}
    assert parse_actor(doc).key_id == "https://r.example/u/x#main-key"
    doc["publicKey"]["owner"] = "https://r.example/u/other"
    with pytest.raises(ParseError, match="owned by another actor"):
        parse_actor(doc)
    with pytest.raises(ParseError, match="not an actor type"):
        parse_actor({**doc, "type": "Note"})
    elsewhere = {**doc, "publicKey": {"id": "https://victim.example/u/v#main-key", "publicKeyPem": "PEM"}}
    with pytest.raises(ParseError, match="not on the actor's own server"):
        parse_actor(elsewhere)
