"""Turn what a local author typed into post HTML: paragraphs, links and `@name@domain` mentions.

Pure. Plain text is escaped; text that is already HTML goes through the same sanitizer as
remote content, so a local post can never carry markup a peer would strip or run.
"""

from __future__ import annotations

import re
from html import escape

from .build import Mention
from .sanitize import html_to_text, sanitize_html

HANDLE_RE = re.compile(r"(?<![\w@/])@([A-Za-z0-9_]{1,30})@((?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+(?::\d{1,5})?)")
_URL_RE = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
_TOKEN_RE = re.compile(f"{_URL_RE.pattern}|{HANDLE_RE.pattern}")
_HTML_START = re.compile(r"^\s*<(p|div|span|a|b|i|em|strong|ul|ol|blockquote|pre|br)\b", re.IGNORECASE)


def looks_like_html(text: str) -> bool:
    """True when the input starts with a block or inline tag."""
    return bool(_HTML_START.match(text))


def find_handles(text: str) -> list[tuple[str, str]]:
    """Distinct `(name, domain)` pairs mentioned as `@name@domain`, in order of appearance."""
    plain = html_to_text(text) if looks_like_html(text) else text
    seen: dict[tuple[str, str], None] = {}
    for match in HANDLE_RE.finditer(plain):
        seen.setdefault((match.group(1), match.group(2).lower()), None)
    return list(seen)


def _mention_html(mention: Mention, profile_url: str) -> str:
    name = mention.name.lstrip("@").split("@", 1)[0]
    return (f'<span class="h-card"><a href="{escape(profile_url)}" class="u-url mention">'
            f"@<span>{escape(name)}</span></a></span>")


def _link_html(url: str) -> str:
    return f'<a href="{escape(url)}" rel="nofollow noopener noreferrer" target="_blank">{escape(url)}</a>'


def _inline(line: str, mentions: dict[str, tuple[Mention, str]]) -> str:
    out, last = [], 0
    for match in _TOKEN_RE.finditer(line):
        out.append(escape(line[last:match.start()]))
        token = match.group(0)
        known = mentions.get(token.lower())
        if token.startswith("@"):
            out.append(_mention_html(*known) if known else escape(token))
        else:
            out.append(_link_html(token))
        last = match.end()
    out.append(escape(line[last:]))
    return "".join(out)


def compose_html(text: str, mentions: dict[str, tuple[Mention, str]]) -> str:
    """Post HTML from typed text; `mentions` maps `@name@domain` (lower case) to (Mention, profile URL)."""
    if looks_like_html(text):
        return sanitize_html(text)
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip().replace("\r\n", "\n")) if p.strip()]
    return "".join(
        "<p>" + "<br>".join(_inline(line, mentions) for line in paragraph.split("\n")) + "</p>"
        for paragraph in paragraphs
    )
