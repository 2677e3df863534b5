"""The streaming API's pure routing core: stream names, access rules, and who gets which event."""

from __future__ import annotations

import pytest

from fedserver.api.stream_router import NO_LIST, Router, Stream, StreamError, check_access, parse_stream


def test_stream_names_and_their_parameters_parse_as_mastodon_names_them():
    assert parse_stream("user") == Stream("user")
    assert parse_stream("hashtag", tag="#Tea") == Stream("hashtag", "tea")
    assert parse_stream("hashtag:local", tag="도자기").label == ["hashtag:local", "도자기"]
    assert parse_stream("public:local").label == ["public:local"]
    for name, params, status in (("nope", {}, 400), ("", {}, 400), ("hashtag", {}, 400),
                                 ("list", {"list_id": "three"}, 404), ("list", {}, 400)):
        with pytest.raises(StreamError) as raised:
            parse_stream(name, **params)
        assert raised.value.status == status
    with pytest.raises(StreamError, match=NO_LIST):
        parse_stream("list", list_id="three")
    assert parse_stream("list", list_id="3").label == ["list", "3"]  # whose list it is, the hub asks the database


def test_personal_streams_need_an_account_and_a_read_scope():
    allow, deny = (lambda scopes: True), (lambda scopes: False)
    check_access(Stream("public"), None, deny)  # anonymous readers may read public streams
    with pytest.raises(StreamError) as raised:
        check_access(Stream("user"), None, allow)
    assert raised.value.status == 401
    with pytest.raises(StreamError) as raised:
        check_access(Stream("user"), 7, deny)
    assert raised.value.status == 403
    assert "read:notifications" in Stream("user:notification").scopes


def test_router_finds_subscribers_by_account_by_locality_and_by_tag():
    router: Router[str] = Router()
    router.subscribe("alice-ws", Stream("user"), 1)
    router.subscribe("alice-ws", Stream("public:local"), 1)
    router.subscribe("bob-sse", Stream("user"), 2)
    router.subscribe("anon", Stream("hashtag", "tea"), None)
    router.subscribe("anon2", Stream("public:remote"), None)
    assert router.personal("user", [1, 3]) == [("alice-ws", Stream("user"))]
    assert sorted(router.accounts_on("user")) == [1, 2]
    local = router.public(local=True, tags=["tea"])
    assert sorted(local, key=str) == sorted([("alice-ws", Stream("public:local")), ("anon", Stream("hashtag", "tea"))],
                                            key=str)
    assert router.public(local=False, tags=[]) == [("anon2", Stream("public:remote"))]
    router.unsubscribe("alice-ws", Stream("public:local"))
    assert router.public(local=True, tags=[]) == []
    router.drop("alice-ws")
    assert router.personal("user", [1]) == [] and router.streams_of("alice-ws") == set()
    assert router.wants_public()
    router.drop("anon")
    router.drop("anon2")
    assert not router.wants_public()
