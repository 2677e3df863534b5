"""Editing one's own post: new content, content warning and language, federated as Update{Note}.

Mastodon applies an Update only when `updated` is set, and keeps the post's addressing; newly
mentioned actors are added to `cc` (`to` for direct posts) and receive the Update too.
"""

from __future__ import annotations

import asyncpg

from activities.actor import Actor
from activities.build import activity_uri, build_update, new_object_id
from activities.text import compose_html, find_hashtags
from activities.util import iso_datetime

from ..publish import Publisher
from ..repo import published as published_repo
from ..repo import statuses as statuses_repo
from ..repo.deliveries import actor_inboxes, follower_inboxes
from ..repo.search import index_post_text
from . import feeds, posting
from .outbox import OutboxError, _now, mentions_in


def _edited_document(old: dict, visibility: str, *, html: str, options: posting.PostOptions, tags: list[dict],
                     mentioned: list[str], updated: str) -> dict:
    doc = {**old, "content": html, "summary": options.spoiler_text or None,
           "sensitive": options.sensitive or bool(options.spoiler_text), "tag": tags, "updated": updated}
    doc.pop("contentMap", None)
    if options.language:
        doc["contentMap"] = {options.language: html}
    key = "to" if visibility == "direct" else "cc"
    addressed = set(doc.get("to") or []) | set(doc.get("cc") or [])
    doc[key] = list(doc.get(key) or []) + [uri for uri in mentioned if uri not in addressed]
    return doc


async def edit_post(conn: asyncpg.Connection, publisher: Publisher, actor: Actor, url: str, text: str,
                    options: posting.PostOptions) -> str:
    """Change one's own post and send Update{object} to everyone it concerns; returns the Update id."""
    if not text.strip():
        raise OutboxError("the post is empty")
    settings = publisher.settings
    post = await statuses_repo.get_object_by_uri(conn, url)
    if post is None or not post.is_local or post.actor_id != actor.id or post.deleted_at is not None:
        raise OutboxError(f"@{actor.username} has no post at {url}")
    earlier_audience = await published_repo.audience_inboxes(conn, post.uri)  # before the mentions change
    mentions = await mentions_in(conn, text, settings.instance.domain)
    hashtags = find_hashtags(text)
    extras = posting.note_extras(settings, options, hashtags)
    html = compose_html(text, {key: (m, a.url or a.uri) for key, (m, a) in mentions.items()},
                        tags_base=posting.tags_base(settings))
    tags = ([{"type": "Mention", "href": m.href, "name": m.name} for m, _ in mentions.values()]
            + [{"type": "Hashtag", "href": href, "name": f"#{name}"} for name, href in extras.hashtags])
    now = _now()
    mentioned = [a.uri for _, a in mentions.values()]
    doc = _edited_document(post.data, post.visibility, html=html, options=options, tags=tags, mentioned=mentioned,
                           updated=iso_datetime(now))
    await statuses_repo.update_local_object(conn, post.id, content=html, summary=doc["summary"], data=doc,
                                            updated_at=now)
    await posting.record_edit(conn, post.id, text, options)
    await index_post_text(conn, post.id, html)
    await feeds.post_edited(conn, post.id, mention_uris=mentioned, hashtags=hashtags)
    inboxes = earlier_audience + await actor_inboxes(conn, mentioned)
    if post.visibility != "direct":
        inboxes += await follower_inboxes(conn, actor.id)
    update = build_update(actor.uri, activity_uri(actor.uri, "update", new_object_id()), doc, now)
    return await publisher.publish(conn, actor, update, inboxes, object_uri=post.uri, visibility=post.visibility)
