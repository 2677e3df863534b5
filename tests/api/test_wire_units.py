"""Pure parts of the API: scopes, pagination, datetimes, Rails-style parameters, note rendering, PKCE."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone

import pytest

from fedserver.api import scopes
from fedserver.api.oauth_service import (
    check_redirect_uri,
    pkce_matches,
    redirect_with,
    split_redirect_uris,
)
from fedserver.api.pagination import link_header, parse_page
from fedserver.api.params import Params, nest
from fedserver.api.profile import note_html
from fedserver.api.wire import api_date, api_datetime, api_midnight
from fedserver.errors import HTTPError


def test_datetimes_have_exactly_three_millisecond_digits():
    moment = datetime(2026, 11, 25, 12, 34, 56, 789_999, tzinfo=timezone.utc)
    assert api_datetime(moment) == "2026-11-25T12:34:56.789Z"
    assert api_datetime(moment.replace(microsecond=0)) == "2026-11-25T12:34:56.000Z"
    assert api_date(moment) == "2026-11-25" and api_midnight(moment) == "2026-11-25T00:00:00.000Z"


def test_scopes_expand_and_follow_implies_the_legacy_sub_scopes():
    assert scopes.grants(("read",), ("read:accounts",))
    assert scopes.grants(("follow",), ("write:follows",)) and scopes.grants(("follow",), ("read:mutes",))
    assert not scopes.grants(("follow",), ("read:statuses",))
    assert not scopes.grants(("write",), ("read:accounts",))
    assert scopes.parse_scopes("read+write  follow") == ("read", "write", "follow")
    assert scopes.parse_scopes(None) == ("read",)
    with pytest.raises(scopes.ScopeError):
        scopes.parse_scopes("read everything")
    scopes.check_allowed(("read:accounts", "write:statuses"), ("read", "write"))
    with pytest.raises(scopes.ScopeError):
        scopes.check_allowed(("push",), ("read", "write", "follow"))


def test_page_parsing_clamps_the_limit_and_checks_cursors():
    assert parse_page({}) == parse_page({"limit": "abc"})
    assert parse_page({}).limit == 20 and parse_page({"limit": "500"}).limit == 40
    assert parse_page({"limit": "500"}, maximum=80).limit == 80 and parse_page({"limit": "0"}).limit == 1
    page = parse_page({"max_id": "30", "min_id": "10"})
    assert (page.max_id, page.min_id, page.ascending) == (30, 10, True)
    with pytest.raises(HTTPError) as err:
        parse_page({"since_id": "abc"})
    assert err.value.status == 400


def test_link_header_puts_next_first_and_omits_prev_for_empty_pages():
    link = link_header("https://shop.test", "/api/v1/timelines/home", {"local": "true", "max_id": "99"},
                       [50, 40, 30], 3)
    assert link == ('<https://shop.test/api/v1/timelines/home?local=true&limit=3&max_id=30>; rel="next", '
                    '<https://shop.test/api/v1/timelines/home?local=true&limit=3&min_id=50>; rel="prev"')
    assert link_header("https://s", "/p", {}, [5, 4], 20) == '<https://s/p?limit=20&min_id=5>; rel="prev"'
    assert link_header("https://s", "/p", {}, [], 20) is None


def test_rails_style_form_keys_nest():
    data = nest([("id[]", "1"), ("id[]", "2"), ("source[privacy]", "unlisted"), ("home[last_read_id]", "9"),
                 ("plain", "x"), ("weird[", "y"), ("a[b][c][d][e][f]", "deep")])
    assert data["id"] == ["1", "2"] and data["source"] == {"privacy": "unlisted"}
    assert data["home"] == {"last_read_id": "9"} and data["plain"] == "x" and data["weird["] == "y"
    assert data["a[b][c][d][e][f]"] == "deep"
    params = Params({"flag": "1", "off": "false", "n": 3, "bad": "maybe"})
    assert params.boolean("flag") is True and params.boolean("off") is False and params.string("n") == "3"
    with pytest.raises(HTTPError):
        params.boolean("bad")


def test_note_is_escaped_text_in_paragraphs_with_links():
    html = note_html("<b>도자기</b> & glaze\nline two\n\nsee https://shop.test/x.")
    assert html == ('<p>&lt;b&gt;도자기&lt;/b&gt; &amp; glaze<br>line two</p><p>see <a href="https://shop.test/x" '
                    'rel="nofollow noopener noreferrer" target="_blank">https://shop.test/x</a>.</p>')
    assert note_html("") == ""


def test_redirect_uris_accept_custom_schemes_and_refuse_dangerous_ones():
    assert split_redirect_uris("urn:ietf:wg:oauth:2.0:oob\noauth2redirect://com.keylesspalace.tusky/") == [
        "urn:ietf:wg:oauth:2.0:oob", "oauth2redirect://com.keylesspalace.tusky/"]
    assert check_redirect_uri("com.tapbots.Ivory.19300:/request_token") == "com.tapbots.Ivory.19300:/request_token"
    for bad in ("javascript:alert(1)", "data:text/html,x", "https://", "/relative", "https://a/b#c", "a b:c"):
        with pytest.raises(ValueError):
            check_redirect_uri(bad)
    assert redirect_with("myapp://cb", {"code": "c", "state": None}) == "myapp://cb?code=c"
    assert redirect_with("https://a/cb?x=1", {"code": "c d"}) == "https://a/cb?x=1&code=c+d"


def test_pkce_s256():
    verifier = "a" * 43
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert pkce_matches(verifier, challenge)
    assert not pkce_matches("b" * 43, challenge)
    assert not pkce_matches(challenge, challenge)  # "plain" use of the challenge as verifier fails
    assert not pkce_matches("short", challenge)
