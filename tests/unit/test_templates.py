"""The templates layer without a server: Babel formatting, language choice, catalogs, autoescape."""

from __future__ import annotations

from datetime import datetime, timezone
from importlib import resources
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import make_mocked_request
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

from fedserver.templates import pick_language, prefers_html
from fedserver.templates.catalogs import read_catalog
from fedserver.templates.formatting import format_datetime, format_money, format_number
from fedserver.templates.render import Pages

SEOUL = ZoneInfo("Asia/Seoul")
MOMENT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def _request(**headers: str):
    return make_mocked_request("GET", "/", headers=headers)


def test_won_are_whole_and_grouped_with_the_won_sign():
    assert format_money(38_000, lang="ko") == "₩38,000"
    assert format_money(38_000, "KRW", lang="en") == "₩38,000"
    assert format_money(0, lang="ko") == "₩0"
    assert format_money(1_999, "USD", lang="en") == "$19.99"  # other currencies count their smallest unit
    for not_whole in (38_000.0, True, "38000"):
        with pytest.raises(TypeError):
            format_money(not_whole, lang="ko")  # type: ignore[arg-type]


def test_numbers_are_grouped():
    assert format_number(1_234_567, lang="ko") == "1,234,567"
    assert format_number(1_234_567, lang="en") == "1,234,567"


def test_dates_are_shown_in_the_configured_time_zone_in_each_language():
    assert format_datetime(MOMENT, lang="ko", zone=SEOUL) == "2026. 1. 2. 오후 12:04:05"
    assert format_datetime(MOMENT, lang="en", zone=SEOUL) == "Jan 2, 2026, 12:04:05\u202fPM"
    assert format_datetime(MOMENT, lang="ko", zone=ZoneInfo("Europe/Berlin")) == "2026. 1. 2. 오전 4:04:05"
    assert format_datetime(MOMENT, "long", lang="ko", zone=SEOUL) == "2026년 1월 2일 오후 12시 4분 5초 +0900"
    with pytest.raises(ValueError, match="naive"):
        format_datetime(MOMENT.replace(tzinfo=None), lang="ko", zone=SEOUL)


@pytest.mark.parametrize(("header", "lang"), [
    ("", "ko"),
    ("en-US,en;q=0.9", "en"),
    ("EN", "en"),
    ("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7", "ko"),
    ("en;q=0.5, ko;q=0.9", "ko"),
    ("fr-FR, en;q=0.3", "en"),
    ("fr, de", "ko"),
    ("en;q=0", "ko"),
    ("ko;q=abc, en;q=0.1", "en"),  # a broken quality counts as 0
])
def test_korean_unless_the_browser_prefers_english(header, lang):
    assert pick_language(_request(**{"Accept-Language": header})) == lang


@pytest.mark.parametrize(("accept", "html"), [
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),  # Firefox, Chrome
    ("text/html", True),
    (None, False),
    ("*/*", False),
    ("application/json", False),
    ("application/activity+json, application/ld+json", False),
    ("application/json, text/html", False),  # a tie goes to JSON
    ("application/json;q=0.5, text/html", True),
    ("text/html;q=0, application/json;q=0.1", False),
])
def test_only_a_client_that_ranks_html_first_gets_a_page(accept, html):
    assert prefers_html(_request(**({"Accept": accept} if accept is not None else {}))) is html


def _template_messages() -> set[str]:
    package = resources.files("fedserver.templates")
    with package.joinpath("babel.cfg").open(encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    return {message for _, _, message, *_ in extract_from_dir(str(package), method_map, options_map)}


def test_every_text_of_the_templates_is_translated_to_korean_and_nothing_else_is_kept():
    in_templates = _template_messages()
    assert len(in_templates) > 10
    korean, english = read_catalog("ko"), read_catalog("en")
    for catalog in (korean, english):
        kept = {message.id for message in catalog if message.id}
        assert kept == in_templates, f"{catalog.locale}: update the catalog from the templates"
        assert not list(catalog.check()), f"{catalog.locale}: placeholders differ"
    untranslated = [m.id for m in korean if m.id and (not m.string or m.fuzzy)]
    assert untranslated == []


def test_values_are_escaped_and_texts_translated():
    pages = Pages("Asia/Seoul")
    html = pages.render("ko", "error.html", status_code=404, detail="<script>alert(1)</script>")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html
    assert '<html lang="ko">' in html and "<h1>찾을 수 없습니다</h1>" in html
    assert "<h1>Not found</h1>" in pages.render("en", "error.html", status_code=404, detail="")
