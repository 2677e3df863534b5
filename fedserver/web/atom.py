"""An account's posts as an Atom feed (RFC 4287), for feed readers. Pure: documents in, bytes out.

Each entry's content is the post's HTML, sanitized again (`activities.sanitize`), as
`type="html"`; ElementTree escapes every text, so nothing a post says can break the XML.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from activities.actor import Actor
from activities.sanitize import html_to_text, sanitize_html

from ..repo.pages import PagePost

ATOM = "http://www.w3.org/2005/Atom"
TITLE_CHARS = 80


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def entry_title(post: PagePost) -> str:
    """An article's title; for a short post, the start of its text (feed readers need a title)."""
    if post.name:
        return post.name
    text = " ".join(html_to_text(post.content, max_chars=None).split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1].rstrip() + "…"


def account_feed(actor: Actor, feed_url: str, posts: Sequence[PagePost]) -> bytes:
    """The feed of `actor` at `feed_url`, with `posts` newest first."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")

    def add(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    profile = actor.url or actor.uri
    add(feed, "id", feed_url)
    add(feed, "title", actor.display_name or actor.username)
    if actor.summary:
        add(feed, "subtitle", html_to_text(actor.summary, max_chars=None).strip())
    add(feed, "link", rel="self", type="application/atom+xml", href=feed_url)
    add(feed, "link", rel="alternate", type="text/html", href=profile)
    add(feed, "updated", _iso(max((p.updated_at or p.published_at for p in posts), default=actor.updated_at)))
    author = add(feed, "author")
    add(author, "name", actor.display_name or actor.username)
    add(author, "uri", profile)
    if actor.icon_url:
        add(feed, "icon", actor.icon_url)
    for post in posts:
        entry = add(feed, "entry")
        add(entry, "id", post.uri)
        add(entry, "title", entry_title(post))
        add(entry, "link", rel="alternate", type="text/html", href=post.data.get("url") or post.uri)
        add(entry, "published", _iso(post.published_at))
        add(entry, "updated", _iso(post.updated_at or post.published_at))
        if post.summary:
            add(entry, "summary", html_to_text(post.summary, max_chars=None).strip())
        add(entry, "content", sanitize_html(post.content, max_chars=None), type="html")
        for attachment in post.data.get("attachment") or []:
            if isinstance(attachment, dict) and isinstance(attachment.get("url"), str) \
                    and str(attachment.get("mediaType", "")).startswith("image/"):
                add(entry, "link", rel="enclosure", type=attachment["mediaType"], href=attachment["url"])
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
