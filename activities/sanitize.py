"""Reduce remote HTML and text fields to what we can safely store and render.

Remote ``content``, ``summary`` and ``name`` are attacker-controlled (checklist row H:
Mastodon CVE-2023-36459, the lemmy.world emoji XSS). This module is pure: no I/O.

HTML follows Mastodon's ``MASTODON_STRICT`` allow-list (``lib/sanitize_ext/
sanitize_config.rb``), enforced by nh3 (Ammonia + html5ever, a spec-compliant parser):

- Elements: p br span a del s pre blockquote code b strong u i em ul ol li ruby rt rp.
  Any other tag is removed but its text kept (h1-h6 and div become bare text, so
  adjacent blocks can run together). script, style, iframe, object, embed, svg, math,
  template and similar are removed together with their content.
- Attributes: a[href class title translate], span[class translate], ol[start reversed],
  li[value]. No style, no event handlers, no ids.
- Classes: microformats (``h-``, ``p-``, ``u-``, ``dt-``, ``e-`` prefixes) plus
  ``mention hashtag ellipsis invisible``; anything else is dropped.
- Links: only absolute URLs with a scheme in ``LINK_SCHEMES``. Any other href
  (javascript:, data:, vbscript:, relative, protocol-relative) turns the link into its
  text, as Mastodon's ``UNSUPPORTED_HREF_TRANSFORMER`` does. Every kept link gets
  ``rel="nofollow noopener noreferrer" target="_blank"``; a remote ``rel`` is replaced.

Size limits for remote fields (checklist row G, §5 #27):

- ``content`` HTML longer than ``MAX_CONTENT`` characters is rejected with
  ``ContentTooLarge`` (``sanitize_html`` checks before parsing). It is never truncated:
  cutting HTML drops closing tags and half-written links, and cutting sanitized output
  as a string can leave a tag open.
- ``name`` (display names, titles) is plain text: ``truncate_text(name, MAX_NAME)``;
  escape it when rendering, never treat it as HTML.
- ``summary`` is truncated as text, then sanitized:
  ``sanitize_html(truncate_text(summary, MAX_SUMMARY))``. Sanitizing after the cut
  keeps the stored HTML well-formed.
- Lists: keep the first ``MAX_TAGS`` tags and ``MAX_ATTACHMENTS`` attachments.

Truncation counts Unicode code points (never a partial UTF-8 sequence) and backs off
so it does not split a combining mark, emoji sequence or Hangul jamo from its base.
"""

from __future__ import annotations

import functools
import html as html_lib
import re
import unicodedata
from html.parser import HTMLParser

import nh3

MAX_NAME = 100
MAX_SUMMARY = 5_000
MAX_CONTENT = 100_000
MAX_TAGS = 100
MAX_ATTACHMENTS = 16

ALLOWED_TAGS = frozenset({
    "p", "br", "span", "a", "del", "s", "pre", "blockquote", "code", "b", "strong", "u",
    "i", "em", "ul", "ol", "li", "ruby", "rt", "rp",
})
# Dropped with everything inside; noscript/noembed/noframes are raw-text elements that
# parsers disagree on (a classic mutation-XSS vector), so their fallback text goes too.
DROPPED_WITH_CONTENT = frozenset({
    "script", "style", "iframe", "object", "embed", "svg", "math", "template",
    "noscript", "noembed", "noframes", "applet", "frame", "frameset",
})
ALLOWED_ATTRIBUTES = {
    "a": {"href", "class", "title", "translate"},
    "span": {"class", "translate"},
    "ol": {"start", "reversed"},
    "li": {"value"},
}
# Mastodon's LINK_PROTOCOLS plus mailto.
LINK_SCHEMES = frozenset({
    "http", "https", "mailto", "dat", "dweb", "ipfs", "ipns", "ssb", "gopher", "xmpp",
    "magnet", "gemini",
})
LINK_REL = "nofollow noopener noreferrer"
ALLOWED_CLASSES = frozenset({"mention", "hashtag", "ellipsis", "invisible"})

# Stricter than Mastodon: a microformat class must also be a plain CSS identifier.
_MICROFORMAT_CLASS = re.compile(r"(?:h|p|u|dt|e)-[A-Za-z0-9_-]+")
_ABSOLUTE_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_INTEGER = re.compile(r"-?[0-9]{1,9}")
# In sanitized HTML: tags that end a line or a block, and any other tag.
_BREAKING_TAG = re.compile(r"</?(?:p|br|li|ul|ol|pre|blockquote)\b[^>]*>")
_TAG = re.compile(r"<[^>]*>")
_MAX_BACKOFF = 32  # Unicode stream-safe text has at most 30 non-starters in a row.


class ContentTooLarge(ValueError):
    """Remote HTML longer than the allowed number of characters."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"content is {length} characters, limit is {limit}")
        self.length = length
        self.limit = limit


def sanitize_html(html: str, *, max_chars: int | None = MAX_CONTENT) -> str:
    """Reduce remote HTML to the strict allow-list; raise ContentTooLarge past max_chars."""
    if max_chars is not None and len(html) > max_chars:
        raise ContentTooLarge(len(html), max_chars)
    cleaned = _cleaner().clean(html)
    return _unwrap_hrefless_links(cleaned) if "<a " in cleaned else cleaned


@functools.cache
def _cleaner() -> nh3.Cleaner:
    """The allow-list above as one reusable nh3 cleaner (building it is most of the cost of a short post)."""
    return nh3.Cleaner(
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_filter_attribute,
        url_schemes=set(LINK_SCHEMES),
        link_rel=LINK_REL,
        set_tag_attribute_values={"a": {"target": "_blank"}},
    )


def html_to_text(html: str, *, max_chars: int | None = MAX_CONTENT, sanitized: bool = False) -> str:
    """Plain text of remote HTML for search and previews; p, li and br become newlines.

    `sanitized`: the HTML already went through `sanitize_html` (or is our own), so it is not cleaned again.
    """
    extractor = _TextExtractor()
    extractor.feed(html if sanitized else sanitize_html(html, max_chars=max_chars))
    extractor.close()
    return extractor.text()


def sanitized_words(html: str) -> str:
    """The words of sanitized HTML (`sanitize_html`'s or our own) in order, for indexing, about ten times faster
    than `html_to_text`: line and block tags become a newline, other tags nothing, entities their characters.

    Words and the separators between them are those of `html_to_text`; only the amount of whitespace differs.
    """
    return html_lib.unescape(_TAG.sub("", _BREAKING_TAG.sub("\n", html)))


def truncate_text(value: str, limit: int) -> str:
    """At most `limit` characters of `value`, cut between grapheme clusters where possible."""
    if limit < 0:
        raise ValueError("limit must not be negative")
    if len(value) <= limit:
        return value
    for cut in range(limit, max(limit - _MAX_BACKOFF, 0), -1):
        if not _joined(value, cut):
            return value[:cut]
    return value[:limit]  # no boundary nearby (Zalgo text): cut hard


def _filter_attribute(tag: str, name: str, value: str) -> str | None:
    # Called by Ammonia for every kept attribute, including the ones it adds.
    if name == "class":
        return _filter_classes(value)
    if name == "href":
        return value if _has_allowed_scheme(value) else None
    if name == "translate":
        return value if value in ("yes", "no") else None
    if name in ("start", "value"):
        return value if _INTEGER.fullmatch(value.strip()) else None
    return value


def _filter_classes(value: str) -> str | None:
    kept = [c for c in value.split() if c in ALLOWED_CLASSES or _MICROFORMAT_CLASS.fullmatch(c)]
    return " ".join(dict.fromkeys(kept)) or None


def _has_allowed_scheme(url: str) -> bool:
    # Ammonia already dropped absolute URLs with other schemes; relative ones pass it,
    # and Mastodon turns those into text, so require an explicit allowed scheme here.
    match = _ABSOLUTE_URL.match(url)
    return match is not None and match.group(1).lower() in LINK_SCHEMES


def _unwrap_hrefless_links(html: str) -> str:
    """Replace each <a> that lost its href with its children (Mastodon: link becomes text)."""
    finder = _HreflessLinkFinder()
    finder.feed(html)
    finder.close()
    if not finder.spans:
        return html
    line_starts = [0] + [m.end() for m in re.finditer("\n", html)]
    pieces, position = [], 0
    for (line, column), length in finder.spans:
        start = line_starts[line - 1] + column
        if not html.startswith(("<a", "</a>"), start):
            return html  # unexpected layout: an <a> without href is inert anyway
        pieces.append(html[position:start])
        position = start + length
    pieces.append(html[position:])
    return "".join(pieces)


class _HreflessLinkFinder(HTMLParser):
    """Finds the exact start and end tags of anchors without href in nh3's output."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.spans: list[tuple[tuple[int, int], int]] = []
        self._open: list[bool] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":
            return
        bare = not any(name == "href" for name, _ in attrs)
        self._open.append(bare)
        if bare:
            self.spans.append((self.getpos(), len(self.get_starttag_text() or "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open and self._open.pop():
            self.spans.append((self.getpos(), len("</a>")))  # html5ever writes it this way


class _TextExtractor(HTMLParser):
    """Collects text, collapsing HTML whitespace except inside <pre>."""

    _BLOCKS = frozenset({"p", "blockquote", "pre", "ul", "ol"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._pre_depth = 0
        self._line_start = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "li"):
            self._break("\n")
        elif tag in self._BLOCKS:
            self._break("\n\n")
        if tag == "pre":
            self._pre_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self._BLOCKS:
            self._break("\n\n")
        if tag == "pre" and self._pre_depth:
            self._pre_depth -= 1

    def handle_data(self, data: str) -> None:
        if not self._pre_depth:
            data = re.sub(r"[ \t\r\n\f]+", " ", data)
            if self._line_start:
                data = data.lstrip(" ")
        if data:
            self._parts.append(data)
            self._line_start = False

    def text(self) -> str:
        return re.sub(r"\n{3,}", "\n\n", "".join(self._parts)).strip()

    def _break(self, newlines: str) -> None:
        if self._parts and not self._pre_depth:
            self._parts[-1] = self._parts[-1].rstrip(" ")
        self._parts.append(newlines)
        self._line_start = True


def _joined(value: str, cut: int) -> bool:
    """True if value[cut - 1] and value[cut] belong to one user-perceived character."""
    before, after = value[cut - 1], value[cut]
    code = ord(after)
    if unicodedata.category(after) in ("Mn", "Mc", "Me"):
        return True
    if after == "\u200d" or before == "\u200d":  # zero-width joiner sequences
        return True
    if 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF:  # variation selectors
        return True
    if 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F:  # skin tones, tag chars
        return True
    if 0x1160 <= code <= 0x11FF or 0xD7B0 <= code <= 0xD7FF:  # Hangul jamo vowels, finals
        return True
    if 0xD800 <= ord(before) <= 0xDBFF and 0xDC00 <= code <= 0xDFFF:  # surrogate pair
        return True
    if before == "\r" and after == "\n":
        return True
    return _inside_flag(value, cut)


def _inside_flag(value: str, cut: int) -> bool:
    """True if the cut falls between the two regional indicators of a flag emoji."""
    def regional(ch: str) -> bool:
        return 0x1F1E6 <= ord(ch) <= 0x1F1FF

    if not (regional(value[cut - 1]) and regional(value[cut])):
        return False
    run = 0
    while run < cut and regional(value[cut - 1 - run]):
        run += 1
    return run % 2 == 1
