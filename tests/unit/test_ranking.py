"""The open ranking's formula (rewards/ranking.py): deterministic, order-free, windowed, and only from receipts."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.ranking import (
    ACTOR_CAP,
    LIMIT,
    RANK_KINDS,
    WINDOWS,
    LogHead,
    RankingError,
    build_ranking,
    check_request,
    encode_ranking,
    formula,
    is_product,
    parse_saved_ranking,
    rank,
)
from rewards.receipt import Receipt

T0 = 1767225600
DAY = 86400
HEADS = [LogHead("b.example/rewards/v1", 4, "AAAA", "https://b.example/rewards/log"),
         LogHead("a.example/rewards/v1", 9, "BBBB", "https://a.example/rewards/log")]
EXAMPLES = settings(max_examples=120, deadline=None)

ACTORS = [f"https://{host}/users/{name}" for host in ("a.example", "b.example") for name in ("ann", "bo", "cy")]
OBJECTS = ["https://a.example/posts/1", "https://a.example/posts/2", "https://b.example/listings/7",
           "https://b.example/listings/8"]
AUTHOR = {OBJECTS[0]: ACTORS[0], OBJECTS[1]: ACTORS[1], OBJECTS[2]: ACTORS[3], OBJECTS[3]: ACTORS[3]}


def receipt(n: int, kind: str, actor: str, obj: str, points: int, time: int) -> Receipt:
    return Receipt(f"x.example/r/{n}", kind, actor, obj, AUTHOR.get(obj, ACTORS[5]), points, time)


@st.composite
def receipts(draw, size: int = 40, least: int = 0) -> list[Receipt]:
    out = []
    for n in range(draw(st.integers(least, size))):
        kind = draw(st.sampled_from(["like", "announce", "reply", "undo-like", "undo-announce"]))
        points = draw(st.integers(0, 3))
        out.append(receipt(n, kind, draw(st.sampled_from(ACTORS)), draw(st.sampled_from(OBJECTS)),
                           -points if kind.startswith("undo-") else points,
                           T0 + draw(st.integers(-40 * DAY, 0))))
    return out


kinds = st.sampled_from(RANK_KINDS)
windows = st.sampled_from(list(WINDOWS))


@EXAMPLES
@given(receipts(), kinds, windows, st.randoms())
def test_the_order_of_receipts_and_of_logs_does_not_change_a_byte(found, kind, window, random):
    shuffled = list(found)
    random.shuffle(shuffled)
    first = encode_ranking(build_ranking(found, kind, window, HEADS))
    assert encode_ranking(build_ranking(shuffled, kind, window, list(reversed(HEADS)))) == first


@EXAMPLES
@given(receipts(), kinds, windows)
def test_a_receipt_present_in_two_logs_counts_once(found, kind, window):
    assert rank(found + found, kind, window) == rank(found, kind, window)


@EXAMPLES
@given(receipts(), kinds, windows)
def test_the_same_input_always_gives_the_same_bytes(found, kind, window):
    outputs = {encode_ranking(build_ranking(list(found), kind, window, HEADS)) for _ in range(3)}
    assert len(outputs) == 1
    document = json.loads(outputs.pop())
    assert document["kind"] == kind and document["window"] == window
    assert [h["origin"] for h in document["logs"]] == sorted(h.origin for h in HEADS)


@EXAMPLES
@given(receipts(least=1), kinds, st.sampled_from(["1d", "7d", "30d"]), st.integers(1, 5))
def test_receipts_outside_the_window_are_ignored(found, kind, window, days_before):
    end, expected = rank(found, kind, window)
    too_old = [receipt(1000 + n, "like", ACTORS[n % 6], OBJECTS[n % 4], 3, end - WINDOWS[window] - n * days_before)
               for n in range(5)]
    assert rank(found + too_old, kind, window) == (end, expected)


@EXAMPLES
@given(receipts(), kinds, windows)
def test_scores_are_positive_sorted_and_each_actor_is_capped(found, kind, window):
    _, entries = rank(found, kind, window)
    assert len(entries) <= LIMIT
    assert [e["rank"] for e in entries] == list(range(1, len(entries) + 1))
    keys = [(-e["score"], -e["actors"], e.get("object") or e["maker"]) for e in entries]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for e in entries:
        assert 0 < e["score"] <= ACTOR_CAP * e["actors"] * (e.get("objects") or 1)


def test_a_score_is_the_capped_points_of_each_actor_in_the_window():
    found = [receipt(1, "like", ACTORS[1], OBJECTS[0], 1, T0),
             receipt(2, "announce", ACTORS[1], OBJECTS[0], 2, T0 - 10),
             receipt(3, "reply", ACTORS[1], OBJECTS[0], 3, T0 - 20),
             receipt(4, "reply", ACTORS[1], OBJECTS[0], 3, T0 - 30),  # 9 points from one actor: capped at 6
             receipt(5, "like", ACTORS[2], OBJECTS[0], 1, T0 - 40),
             receipt(6, "like", ACTORS[2], OBJECTS[1], 1, T0 - 2 * DAY),  # outside 1d
             receipt(7, "like", ACTORS[4], OBJECTS[2], 1, T0 - 50),
             receipt(8, "undo-like", ACTORS[4], OBJECTS[2], -1, T0 - 5)]
    assert rank(found, "posts", "1d") == (T0, [
        {"rank": 1, "object": OBJECTS[0], "maker": ACTORS[0], "score": ACTOR_CAP + 1, "actors": 2}])
    assert rank(found, "posts", "7d")[1][1] == {"rank": 2, "object": OBJECTS[1], "maker": ACTORS[1], "score": 1,
                                                 "actors": 1}
    assert rank(found, "products", "all") == (T0, [])  # liked, then the like undone
    assert rank(found, "makers", "7d")[1] == [
        {"rank": 1, "maker": ACTORS[0], "score": 7, "actors": 2, "objects": 1},
        {"rank": 2, "maker": ACTORS[1], "score": 1, "actors": 1, "objects": 1}]


def test_the_window_ends_at_the_newest_receipt_not_at_the_readers_clock():
    old = [receipt(1, "like", ACTORS[1], OBJECTS[0], 1, 1000), receipt(2, "like", ACTORS[2], OBJECTS[1], 1, 900)]
    assert rank(old, "posts", "1d")[0] == 1000
    assert [e["object"] for e in rank(old, "posts", "1d")[1]] == [OBJECTS[0], OBJECTS[1]]


def test_an_undo_cannot_make_a_score_negative_and_self_interaction_counts_nothing():
    found = [receipt(1, "undo-like", ACTORS[1], OBJECTS[0], -1, T0),
             receipt(2, "like", ACTORS[0], OBJECTS[0], 0, T0)]  # the author's own like carries 0 points
    assert rank(found, "posts", "7d")[1] == []


def test_two_different_receipts_claiming_one_id_are_both_dropped():
    a = receipt(1, "like", ACTORS[1], OBJECTS[0], 1, T0)
    b = Receipt(a.id, "like", ACTORS[2], OBJECTS[1], AUTHOR[OBJECTS[1]], 1, T0)
    c = receipt(2, "like", ACTORS[2], OBJECTS[0], 1, T0)
    assert [e["actors"] for e in rank([a, b, c], "posts", "7d")[1]] == [1]
    assert rank([b, a, c], "posts", "7d") == rank([a, b, c], "posts", "7d")


def test_receipts_of_other_kinds_do_not_enter_the_formula():
    assert "undo-reply" in formula()["counted_receipts"]
    assert set(formula()["counted_receipts"]) == {"like", "announce", "reply", "undo-like", "undo-announce",
                                                  "undo-reply"}


def test_a_product_is_an_object_under_listings():
    assert is_product("https://shop.example/listings/12")
    assert is_product("http://127.0.0.1:8080/listings/3")
    assert not is_product("https://shop.example/listings/12/order")
    assert not is_product("https://shop.example/posts/12")
    assert not is_product("https://shop.example/users/x/listings/12")


@pytest.mark.parametrize("kind, window", [("trending", "7d"), ("posts", "2d"), ("posts", ""), ("", "7d"),
                                          ("Posts", "7d"), ("posts", "7D")])
def test_an_unknown_kind_or_window_is_refused_with_what_is_accepted(kind, window):
    with pytest.raises(RankingError) as refused:
        check_request(kind, window)
    assert "expected one of" in str(refused.value)
    with pytest.raises(RankingError):
        rank([], kind, window)


def test_the_encoding_is_canonical_json():
    document = build_ranking([receipt(1, "like", ACTORS[1], OBJECTS[0], 1, T0)], "posts", "7d", HEADS)
    body = encode_ranking(document)
    assert body.endswith(b"}\n") and b": " not in body and b", " not in body and b"\n" not in body[:-1]
    assert body == (json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                    + "\n").encode()


def test_a_saved_ranking_gives_back_its_request_and_checkpoints():
    body = encode_ranking(build_ranking([], "makers", "30d", HEADS))
    kind, window, heads = parse_saved_ranking(body)
    assert (kind, window, sorted(heads, key=lambda h: h.origin)) == ("makers", "30d",
                                                                      sorted(HEADS, key=lambda h: h.origin))


BAD_SIZE = b'{"kind": "posts", "window": "7d", "logs": [{"origin": "a", "size": %s, "root": "x", "url": "u"}]}'


@pytest.mark.parametrize("body", [b"", b"[]", b'{"kind": "posts"}', b'{"kind": "posts", "window": "9d", "logs": []}',
                                  BAD_SIZE % b"-1", BAD_SIZE % b"true", BAD_SIZE % b'"3"'])
def test_a_malformed_saved_ranking_is_refused(body):
    with pytest.raises(ValueError, match="saved ranking|window"):
        parse_saved_ranking(body)


def test_the_published_formula_names_its_version_and_parameters():
    published = formula()
    assert published["version"] == 1 and published["kinds"] == list(RANK_KINDS)
    assert published["windows"] == {"1d": 86400, "7d": 604800, "30d": 2592000, "all": None}
    assert published["actor_cap"] == ACTOR_CAP and published["limit"] == LIMIT
