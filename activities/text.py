"""Turn what a local author typed into post HTML: paragraphs, links, mentions and hashtags.

Pure. Plain text is escaped; text that is already HTML goes through the same sanitizer as
remote content, so a local post can never carry markup a peer would strip or run.
"""

from __future__ import annotations

import re
import unicodedata
from html import escape
from urllib.parse import quote

from .build import Mention
from .sanitize import html_to_text, sanitize_html

HANDLE_RE = re.compile(r"(?<![\w@/])@([A-Za-z0-9_]{1,30})@((?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+(?::\d{1,5})?)")
# `@name` alone names an account of this instance.
MENTION_RE = re.compile(r"(?<![\w@/])@([A-Za-z0-9_]{1,30})(?:@((?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+(?::\d{1,5})?))?")
HASHTAG_RE = re.compile(r"(?<![\w/#&)])#(\w{1,100})")
MAX_HASHTAGS = 30
_URL_RE = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
_TOKEN_RE = re.compile(f"{_URL_RE.pattern}|{MENTION_RE.pattern}|{HASHTAG_RE.pattern}")
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


def find_mentions(text: str, local_domain: str) -> list[tuple[str, str, str]]:
    """Distinct `(token as typed in lower case, name, domain)`; a bare `@name` is on `local_domain`."""
    plain = html_to_text(text) if looks_like_html(text) else text
    seen: dict[str, tuple[str, str, str]] = {}
    for match in MENTION_RE.finditer(plain):
        domain = (match.group(2) or local_domain).lower()
        seen.setdefault(match.group(0).lower(), (match.group(0).lower(), match.group(1), domain))
    return list(seen.values())


def normalize_hashtag(name: str) -> str | None:
    """A hashtag as stored and compared (NFKC, lower case, no `#`); None if it is not one."""
    tag = unicodedata.normalize("NFKC", name.strip().lstrip("#")).lower()
    if not tag or len(tag) > 100 or not re.fullmatch(r"\w+", tag) or tag.isdigit():
        return None
    return tag


def find_hashtags(text: str) -> list[str]:
    """Distinct normalised hashtags typed as `#name`, in order of appearance (at most MAX_HASHTAGS)."""
    plain = html_to_text(text) if looks_like_html(text) else text
    found: dict[str, None] = {}
    for match in HASHTAG_RE.finditer(plain):
        tag = normalize_hashtag(match.group(1))
        if tag and len(found) < MAX_HASHTAGS:
            found.setdefault(tag, None)
    return list(found)


def tag_hashtags(tags: object) -> list[str]:
    """Normalised names of the `Hashtag` entries of an ActivityPub `tag` value (at most MAX_HASHTAGS)."""
    items = tags if isinstance(tags, list) else [tags]
    found: dict[str, None] = {}
    for item in items:
        if isinstance(item, dict) and item.get("type") == "Hashtag" and isinstance(item.get("name"), str):
            tag = normalize_hashtag(item["name"])
            if tag and len(found) < MAX_HASHTAGS:
                found.setdefault(tag, None)
    return list(found)


def _hashtag_html(name: str, tags_base: str) -> str:
    href = escape(tags_base + quote(normalize_hashtag(name) or ""))
    return f'<a href="{href}" class="mention hashtag" rel="tag">#<span>{escape(name)}</span></a>'


def _mention_html(mention: Mention, profile_url: str) -> str:
    name = mention.name.lstrip("@").split("@", 1)[0]
    return (f'<span class="h-card"><a href="{escape(profile_url)}" class="u-url mention">'
            f"@<span>{escape(name)}</span></a></span>")


def _link_html(url: str) -> str:
    return f'<a href="{escape(url)}" rel="nofollow noopener noreferrer" target="_blank">{escape(url)}</a>'


def _inline(line: str, mentions: dict[str, tuple[Mention, str]], tags_base: str | None) -> str:
    out, last = [], 0
    for match in _TOKEN_RE.finditer(line):
        out.append(escape(line[last:match.start()]))
        token = match.group(0)
        known = mentions.get(token.lower())
        if token.startswith("@"):
            out.append(_mention_html(*known) if known else escape(token))
        elif token.startswith("#"):
            linkable = tags_base is not None and normalize_hashtag(token) is not None
            out.append(_hashtag_html(token[1:], tags_base) if linkable else escape(token))  # type: ignore[arg-type]
        else:
            out.append(_link_html(token))
        last = match.end()
    out.append(escape(line[last:]))
    return "".join(out)


def compose_html(text: str, mentions: dict[str, tuple[Mention, str]], tags_base: str | None = None) -> str:
    """Post HTML from typed text; `mentions` maps `@name[@domain]` as typed (lower case) to (Mention, profile
    URL); with `tags_base`, `#tag` links to `tags_base + tag`."""
    if looks_like_html(text):
        return sanitize_html(text)
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip().replace("\r\n", "\n")) if p.strip()]
    return "".join(
        "<p>" + "<br>".join(_inline(line, mentions, tags_base) for line in paragraph.split("\n")) + "</p>"
        for paragraph in paragraphs
    )
