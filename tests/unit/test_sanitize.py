"""Remote HTML sanitizing and field limits (checklist row H, §5 #32 and #37)."""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from activities.sanitize import (
    ALLOWED_ATTRIBUTES, ALLOWED_TAGS, LINK_SCHEMES, MAX_ATTACHMENTS, MAX_CONTENT, MAX_NAME,
    MAX_SUMMARY, MAX_TAGS, ContentTooLarge, html_to_text, sanitize_html, truncate_text,
)

REL = 'target="_blank" rel="nofollow noopener noreferrer"'
MENTION = '<a href="https://h/@x" class="u-url mention">@<span>x</span></a>'


class _Inventory(HTMLParser):
    """Every tag and attribute in a sanitized fragment, to check against the allow-list."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def assert_within_allow_list(html: str) -> None:
    inventory = _Inventory()
    inventory.feed(html)
    inventory.close()
    for tag, attrs in inventory.elements:
        assert tag in ALLOWED_TAGS, tag
        extra = {"target", "rel"} if tag == "a" else set()
        assert set(attrs) <= ALLOWED_ATTRIBUTES.get(tag, set()) | extra, (tag, attrs)
        if tag == "a":
            assert attrs["href"].split(":", 1)[0].lower() in LINK_SCHEMES
            assert attrs["rel"] == "nofollow noopener noreferrer" and attrs["target"] == "_blank"


# (case, remote HTML, exact sanitized output)
CASES = [
    ("script content dropped", "<p>hi<script>alert(1)</script></p>", "<p>hi</p>"),
    ("script uppercase", "<SCRIPT SRC=//evil/x.js></SCRIPT>ok", "ok"),
    ("onerror on allowed tag", '<b onerror="alert(1)">x</b>', "<b>x</b>"),
    ("onclick on link", f'<a href="https://x" onclick="steal()">x</a>', f'<a href="https://x" {REL}>x</a>'),
    ("javascript href", '<a href="javascript:alert(1)">click</a>', "click"),
    ("data href", '<a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">d</a>', "d"),
    ("vbscript href", '<a href="vbscript:msgbox(1)">v</a>', "v"),
    ("entity-encoded javascript", '<a href="&#106;avascript:alert(1)">e</a>', "e"),
    ("hex entity javascript", '<a href="&#x6A;&#x61;vascript&#x3A;alert(1)">e</a>', "e"),
    ("mixed-case javascript", '<a href="JaVaScRiPt:alert(1)">u</a>', "u"),
    ("tab inside scheme", '<a href="java\tscript:alert(1)">t</a>', "t"),
    ("leading space scheme", '<a href=" javascript:alert(1)">s</a>', "s"),
    ("relative link becomes text", '<a href="/settings">r</a>', "r"),
    ("protocol-relative link", '<a href="//evil.example/x">p</a>', "p"),
    ("anchor without href", "<a>bare</a>", "bare"),
    ("iframe dropped", '<iframe src="https://evil"></iframe>after', "after"),
    ("style tag dropped", "<style>body{display:none}</style>text", "text"),
    ("style attribute dropped", '<p style="position:fixed;top:0">x</p>', "<p>x</p>"),
    ("svg with onload", '<svg onload="alert(1)"><a href="https://x">in</a></svg>after', "after"),
    ("math dropped", '<math><mi xlink:href="javascript:alert(1)">m</mi></math>after', "after"),
    ("object and embed", '<object data="x.swf"><embed src="x.swf">fallback</object>ok', "ok"),
    ("img with onerror removed", '<img src=x onerror="alert(1)">hi', "hi"),
    ("template dropped", "<template><script>alert(1)</script>t</template>ok", "ok"),
    ("noscript mXSS", '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>', '"&gt;'),
    ("unclosed tags closed", "<p><b>bold<i>both", "<p><b>bold<i>both</i></b></p>"),
    ("misnested tags", "<b><i>x</b>y</i>", "<b><i>x</i></b><i>y</i>"),
    ("stray end tags", "</p></a>text</b>", "<p></p>text"),
    ("unknown tags keep text", "<h1>Title</h1><div>body</div>", "Titlebody"),
    ("comment removed", "a<!-- <script>alert(1)</script> -->b", "ab"),
    ("mention kept", MENTION, f'<a href="https://h/@x" class="u-url mention" {REL}>@<span>x</span></a>'),
    ("h-card span kept", '<span class="h-card" translate="no">x</span>', '<span class="h-card" translate="no">x</span>'),
    ("hashtag, rel replaced", '<a href="https://h/tags/a" class="mention hashtag" rel="tag">#a</a>',
     f'<a href="https://h/tags/a" class="mention hashtag" {REL}>#a</a>'),
    ("foreign classes dropped", '<span class="invisible evil h-x<y">x</span>', '<span class="invisible">x</span>'),
    ("class only on a and span", '<p class="mention">x</p>', "<p>x</p>"),
    ("target replaced", '<a href="https://x" target="_top">x</a>', f'<a href="https://x" {REL}>x</a>'),
    ("mailto and gemini kept", '<a href="mailto:a@b">m</a><a href="gemini://g">g</a>',
     f'<a href="mailto:a@b" {REL}>m</a><a href="gemini://g" {REL}>g</a>'),
    ("uppercase https kept", '<a href="HTTPS://x/">x</a>', f'<a href="HTTPS://x/" {REL}>x</a>'),
    ("list attributes", '<ol start="3" reversed><li value="2">a</li><li value="x">b</li></ol>',
     '<ol start="3" reversed=""><li value="2">a</li><li>b</li></ol>'),
    ("korean text intact", "<p>안녕하세요 공방입니다</p>", "<p>안녕하세요 공방입니다</p>"),
    ("br kept", "<p>one<br>two</p>", "<p>one<br>two</p>"),
    ("text is escaped", "1 < 2 & 3 > 2", "1 &lt; 2 &amp; 3 &gt; 2"),
    ("ruby kept", "<ruby>漢<rp>(</rp><rt>kan</rt><rp>)</rp></ruby>", "<ruby>漢<rp>(</rp><rt>kan</rt><rp>)</rp></ruby>"),
    ("attribute with markup", '<a href="javascript:x" title="x\n<script>">t</a>', "t"),
]


@pytest.mark.parametrize(("remote", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_sanitize_html_reduces_remote_html_to_the_allow_list(remote, expected):
    cleaned = sanitize_html(remote)
    assert cleaned == expected
    assert_within_allow_list(cleaned)
    assert sanitize_html(cleaned) == cleaned  # idempotent: safe to re-sanitize stored HTML


def test_sanitize_html_rejects_content_over_the_limit():
    assert sanitize_html("a" * MAX_CONTENT) == "a" * MAX_CONTENT
    with pytest.raises(ContentTooLarge) as raised:
        sanitize_html("a" * (MAX_CONTENT + 1))
    assert isinstance(raised.value, ValueError)
    assert (raised.value.length, raised.value.limit) == (MAX_CONTENT + 1, MAX_CONTENT)
    with pytest.raises(ContentTooLarge):
        sanitize_html("<p>" + "x" * 50, max_chars=10)


# Run in a child process with a hard timeout so a pathological case fails the test
# instead of hanging the suite (nh3 holds no GIL while parsing, but a thread can't be killed).
_CHILD = """
import json, sys, time
from activities.sanitize import html_to_text, sanitize_html
cases = {
    "open <a 50k": "<a " * 50_000,
    "nested <b> 100k": "<b>" * 100_000 + "x",
    "nested <b> 100k closed": "<b>" * 100_000 + "x" + "</b>" * 100_000,
    "nested links+spans 30k": '<p><a href="https://x"><span class="h-card">' * 30_000,
    "unclosed comments": "<!--" * 100_000,
    "lone <": "<" * 300_000,
    "bad hrefs": '<a href="javascript:x" title="t">x</a>' * 10_000,
}
report = {}
for name, html in cases.items():
    start = time.perf_counter()
    cleaned = sanitize_html(html, max_chars=None)
    text = html_to_text(html, max_chars=None)
    report[name] = [len(html), len(cleaned), len(text), time.perf_counter() - start]
json.dump(report, sys.stdout)
"""


def test_pathological_html_finishes_with_bounded_output():
    child = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=300, check=True,
    )
    report = json.loads(child.stdout)
    for name, (size, cleaned, text, seconds) in report.items():
        print(f"{name}: {size} chars in, {cleaned} out, {text} text, {seconds:.3f}s")
        assert cleaned <= 8 * size and text <= size, name
    assert report["open <a 50k"][1:3] == [0, 0]
    assert report["nested <b> 100k"][2] == 1
    assert report["unclosed comments"][1] == 0
    assert report["bad hrefs"][1] == 10_000
    print(f"worst case: {max(r[3] for r in report.values()):.3f}s")


def test_html_to_text_turns_paragraphs_and_breaks_into_newlines():
    html = (
        '<p> Hello <a href="https://x/y"><span class="invisible">https://</span>x/y</a> </p>\n'
        "<p>line1 <br> line2</p><ul><li>a</li><li>b</li></ul><pre>  code\n    more</pre>"
        "&lt;script&gt; <script>alert(1)</script><b>bold</b>"
    )
    assert html_to_text(html) == (
        "Hello https://x/y\n\nline1\nline2\n\na\nb\n\n  code\n    more\n\n<script> bold"
    )


@pytest.mark.parametrize(("html", "text"), [
    ("", ""),
    ("<p>안녕하세요 공방입니다</p>", "안녕하세요 공방입니다"),
    ("Tom &amp; Jerry", "Tom & Jerry"),
    (MENTION + " hi", "@x hi"),
    ('<a href="javascript:alert(1)">click</a>', "click"),
])
def test_html_to_text_small_cases(html, text):
    assert html_to_text(html) == text


def test_html_to_text_enforces_the_content_limit():
    with pytest.raises(ContentTooLarge):
        html_to_text("x" * (MAX_CONTENT + 1))


@pytest.mark.parametrize(("value", "limit", "expected"), [
    ("short", 100, "short"),
    ("", 0, ""),
    ("abc", 0, ""),
    ("안녕하세요 공방입니다", 5, "안녕하세요"),
    ("e\u0301e\u0301", 3, "e\u0301"),  # don't separate the accent from its base
    ("\u1100\u1161\u11a8\u1100\u1161", 4, "\u1100\u1161\u11a8"),  # decomposed Hangul syllables stay whole
    ("ab👍🏽", 3, "ab"),  # skin-tone modifier
    ("a👨\u200d👩\u200d👧b", 4, "a"),  # ZWJ family emoji
    ("🇰🇷🇯🇵", 3, "🇰🇷"),  # flag pairs
    ("x" + "\u0301" * 100, 50, "x" + "\u0301" * 49),  # Zalgo: no boundary nearby, cut hard
])
def test_truncate_text_cuts_on_character_boundaries(value, limit, expected):
    cut = truncate_text(value, limit)
    assert cut == expected
    assert len(cut) <= limit
    cut.encode("utf-8")  # whole code points only


def test_truncate_text_rejects_negative_limits():
    with pytest.raises(ValueError):
        truncate_text("x", -1)


def test_names_and_summaries_follow_the_documented_recipe():
    name = "공방" * 1_000_000  # a 2M-character display name
    assert truncate_text(name, MAX_NAME) == "공방" * (MAX_NAME // 2)
    summary = "<p>" + "<b>x</b>" * 2_000 + "</p>"
    cleaned = sanitize_html(truncate_text(summary, MAX_SUMMARY))
    assert_within_allow_list(cleaned)
    assert cleaned.startswith("<p><b>x</b>") and cleaned.endswith("</p>")
    assert (MAX_TAGS, MAX_ATTACHMENTS) == (100, 16)
