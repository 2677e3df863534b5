"""Character n-grams for search: Korean with and without spaces, particles, mixed scripts, one character."""

from __future__ import annotations

import pytest

from activities.sanitize import html_to_text, sanitize_html
from fedserver.search.ngrams import MAX_QUERY_TERMS, document_terms, is_cjk, normalize, post_terms, query_terms

POST = "오늘 도자기 공방에서 Pottery class! 2026년 전시"


def matches(query: str, text: str = POST) -> bool:
    terms = query_terms(query)
    return bool(terms) and set(terms) <= set(document_terms(text))


@pytest.mark.parametrize("query", ["도자기 공방", "도자기공방", "공방 도자기", "공방에서", "pottery", "POTTERY CLASS",
                                   "도", "class 도자기", "2026년", "ｐｏｔｔｅｒｙ", "전시", "오늘"])
def test_queries_that_match(query):
    assert matches(query)


@pytest.mark.parametrize("query", ["유리 공방", "도자기 유리", "potters", "클래스", "2025", "!!!", ""])
def test_queries_that_do_not_match(query):
    assert not matches(query)


def test_a_spaced_post_matches_an_unspaced_query_and_the_reverse():
    assert matches("도자기공방", "도자기 공방")
    assert matches("도자기 공방", "도자기공방")


def test_query_terms_are_bigrams_trigrams_only_for_latin():
    assert query_terms("도자기") == ["도자", "자기"]
    assert query_terms("Cup") == ["cu", "up", "cup"]
    assert query_terms("도") == ["도"]
    assert query_terms("a 도") == ["a", "도"]


def test_documents_index_single_characters_and_cjk_joins_across_spaces():
    terms = document_terms("찻잔 세트")
    assert {"찻", "잔", "찻잔", "잔세", "세트"} <= set(terms)
    assert "n세" not in document_terms("cafén 세트")  # no join between Latin and Hangul across a space


def test_normalization_and_limits():
    assert normalize("ＡＢＣ Straße") == "abc strasse"
    assert is_cjk("도") and is_cjk("陶") and is_cjk("カ") and not is_cjk("a")
    assert len(query_terms("".join(chr(0xAC00 + i * 7) for i in range(150)))) == MAX_QUERY_TERMS
    assert "_" not in "".join(document_terms("snake_case_name"))


@pytest.mark.parametrize("html", [
    "<p>오늘의 <b>도</b>자기 #공방</p><p>두 번째 문단</p>",
    "<p>도자기<br>공방에서</p><ul><li>찻잔</li><li>tea cup</li></ul>",
    '<p><a href="https://x.example/@kim" class="u-url mention">@<span>kim</span></a> 청자&amp;백자 &lt;b&gt;</p>',
    "<pre>  code\n\nblock 도자기</pre><blockquote>인용 quote</blockquote>",
    "<p>A&nbsp;B 한&#44397;어 <ruby>漢<rp>(</rp><rt>한</rt><rp>)</rp></ruby>字</p>",
    "plain 텍스트 without tags",
])
def test_post_terms_of_sanitized_html_are_those_of_its_plain_text(html):
    """The fast path of indexing gives exactly the terms of the slow, exact extraction."""
    clean = sanitize_html(html)
    assert post_terms(clean, "제목 Title", "<p>내용 경고</p>") == document_terms(
        "\n".join(["제목 Title", html_to_text("<p>내용 경고</p>", max_chars=None),
                   html_to_text(clean, max_chars=None, sanitized=True)]))
