"""Search terms as character n-grams. Pure.

Korean is written with spaces between phrases (어절) but particles stick to the word
(`공방에서`), and people often drop the spaces (`도자기공방`), so word-based full-text
search finds neither. Character n-grams (Lucene's CJK bigram analyzer) find both, with
core PostgreSQL only: a post's terms are one `text[]` with a GIN index, and a query
matches when the post holds every one of the query's terms (`@>`).

- Text is NFKC-normalized and case-folded, then split into runs of letters and digits.
- A run is split where it changes between CJK (Hangul, Han, kana) and other scripts.
- Every segment yields its bigrams; non-CJK segments also yield trigrams (Latin words
  need them for precision, Hangul syllables are rare enough as pairs).
- The boundary between two adjacent segments yields a bigram. In documents, so does a
  space between two CJK segments, so `도자기 공방` and `도자기공방` find each other.
- Documents also index every single character, so a one-character query works;
  queries use unigrams only for one-character segments.
"""

from __future__ import annotations

import re
import unicodedata

from activities.sanitize import html_to_text, sanitized_words

MAX_QUERY_CHARS = 200
MAX_QUERY_TERMS = 64
MAX_DOCUMENT_CHARS = 20_000

_RUN = re.compile(r"[^\W_]+")
# The ranges of `is_cjk`, as a character class: a run splits into maximal CJK and other segments.
_CJK = "\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_SEGMENT = re.compile(f"[{_CJK}]+|[^{_CJK}]+")


def normalize(text: str) -> str:
    """NFKC and case folding, as both sides of a match need."""
    return unicodedata.normalize("NFKC", text).casefold()


def is_cjk(ch: str) -> bool:
    """Hangul syllables and jamo, Han ideographs, kana."""
    code = ord(ch)
    return (0xAC00 <= code <= 0xD7A3 or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F
            or 0x3040 <= code <= 0x30FF or 0x3400 <= code <= 0x4DBF or 0x4E00 <= code <= 0x9FFF
            or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x2FA1F)


def _segments(run: str) -> list[str]:
    """A run split where it changes between CJK and other characters."""
    return _SEGMENT.findall(run)


def _grams(segment: str, *, unigrams: bool) -> list[str]:
    grams = list(segment) if unigrams or len(segment) == 1 else []
    grams += [segment[i:i + 2] for i in range(len(segment) - 1)]
    if not is_cjk(segment[0]):
        grams += [segment[i:i + 3] for i in range(len(segment) - 2)]
    return grams


def _terms(text: str, *, document: bool) -> list[str]:
    """N-grams of normalized text, without duplicates, in order of appearance.

    Only documents get unigrams of long segments and bigrams across a space between CJK
    segments: a query then matches with or without those spaces, in any word order.
    """
    terms: dict[str, None] = {}
    previous, previous_end = "", -1
    for match in _RUN.finditer(text):
        segments = _segments(match.group(0))
        if document and previous and is_cjk(previous[-1]) and is_cjk(segments[0][0]) \
                and text[previous_end:match.start()].isspace():
            terms.setdefault(previous[-1] + segments[0][0], None)
        for i, segment in enumerate(segments):
            terms.update(dict.fromkeys(_grams(segment, unigrams=document)))  # new terms at the end, in order
            if i:
                terms.setdefault(segments[i - 1][-1] + segment[0], None)
        previous, previous_end = segments[-1], match.end()
    return list(terms)


def document_terms(text: str) -> list[str]:
    """Every term a post's plain text is indexed under."""
    return _terms(normalize(text[:MAX_DOCUMENT_CHARS]), document=True)


def post_terms(html: str, name: str | None, summary: str | None) -> list[str]:
    """The terms a post is searchable by: of its title, content warning and content (stored, so already clean)."""
    parts = [name or "", html_to_text(summary, max_chars=None) if summary else "", sanitized_words(html)]
    return document_terms("\n".join(p for p in parts if p))


def query_terms(query: str) -> list[str]:
    """The terms a post must all hold to match `query`; empty when the query has no letters or digits."""
    return _terms(normalize(query[:MAX_QUERY_CHARS]), document=False)[:MAX_QUERY_TERMS]
