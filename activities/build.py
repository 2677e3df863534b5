"""Build the activities local actors send: posts, interactions and their Undo, with Mastodon's addressing.

Pure: ids are passed in (see `new_object_id`, `status_uri`, `activity_uri`), times too.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Sequence

from .actor import Actor, build_actor
from .context import AS_CONTEXT, PUBLIC
from .util import iso_datetime

VISIBILITIES = ("public", "unlisted", "private", "direct")

# What Mastodon's own statuses declare besides ActivityStreams.
NOTE_CONTEXT = [AS_CONTEXT, {"sensitive": "as:sensitive", "Hashtag": "as:Hashtag",
                             "toot": "http://joinmastodon.org/ns#"}]


def new_object_id(now_ms: int | None = None, random_bits: int | None = None) -> str:
    """A 64-bit time-sortable id as a decimal string: milliseconds << 16 | 16 random bits."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    low = secrets.randbits(16) if random_bits is None else random_bits & 0xFFFF
    return str((ms << 16) | low)


def status_uri(actor_uri: str, object_id: str) -> str:
    """Where a local post lives: `{actor}/statuses/{id}`."""
    return f"{actor_uri}/statuses/{object_id}"


def activity_uri(actor_uri: str, kind: str, object_id: str) -> str:
    """Where a local activity lives: `{actor}/activities/{kind}/{id}` (kind in lower case)."""
    return f"{actor_uri}/activities/{kind.lower()}/{object_id}"


@dataclass(frozen=True)
class Mention:
    """A mentioned actor: its id and the `@name@domain` shown."""

    href: str
    name: str


def address(visibility: str, followers_uri: str, mentioned: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """`(to, cc)` as Mastodon addresses each visibility (public, unlisted, private, direct)."""
    others = [uri for uri in dict.fromkeys(mentioned)]
    if visibility == "public":
        return [PUBLIC], [followers_uri, *others]
    if visibility == "unlisted":
        return [followers_uri], [PUBLIC, *others]
    if visibility == "private":
        return [followers_uri], others
    if visibility == "direct":
        return others, []
    raise ValueError(f"visibility must be one of {', '.join(VISIBILITIES)}")


def _mention_tags(mentions: Sequence[Mention]) -> list[dict]:
    return [{"type": "Mention", "href": m.href, "name": m.name} for m in mentions]


@dataclass(frozen=True)
class NoteExtras:
    """What the client API adds to a post: content warning, language, hashtags and attachments."""

    summary: str | None = None
    sensitive: bool = False
    language: str | None = None
    hashtags: tuple[tuple[str, str], ...] = ()  # (name without '#', href)
    attachments: tuple[dict, ...] = ()
    context: str | None = None  # what the post belongs to (an order's Agreement, for its messages)


def _extra_fields(extras: NoteExtras, content_html: str) -> dict:
    fields: dict = {"summary": extras.summary or None, "sensitive": extras.sensitive or bool(extras.summary),
                    "attachment": list(extras.attachments)}
    if extras.language:
        fields["contentMap"] = {extras.language: content_html}
    if extras.context:
        fields["context"] = extras.context
    return fields


def build_note(actor: Actor, *, id: str, content_html: str, published: datetime, to: list[str], cc: list[str],
               in_reply_to: str | None = None, mentions: Sequence[Mention] = (),
               extras: NoteExtras | None = None) -> dict:
    """A short post (Note): Mastodon shows its `content` in full."""
    doc = {
        "@context": NOTE_CONTEXT,
        "id": id,
        "type": "Note",
        "attributedTo": actor.uri,
        "content": content_html,
        "published": iso_datetime(published),
        "url": id,
        "to": list(to),
        "cc": list(cc),
        "inReplyTo": in_reply_to,
        "sensitive": False,
        "summary": None,
        "tag": _mention_tags(mentions),
    }
    if extras is not None:
        doc.update(_extra_fields(extras, content_html))
        doc["tag"] += [{"type": "Hashtag", "href": href, "name": f"#{name}"} for name, href in extras.hashtags]
    return doc


def build_article(actor: Actor, *, id: str, title: str, summary: str | None, content_html: str, url: str,
                  published: datetime, to: list[str], cc: list[str], in_reply_to: str | None = None,
                  mentions: Sequence[Mention] = (), extras: NoteExtras | None = None) -> dict:
    """A blog post (Article). Mastodon shows only `name`, `summary` and a link to `url`, so all three are set."""
    doc = build_note(actor, id=id, content_html=content_html, published=published, to=to, cc=cc,
                     in_reply_to=in_reply_to, mentions=mentions, extras=extras)
    doc.update({"type": "Article", "name": title, "summary": summary or None, "url": url})
    return doc


def _addressed_like(obj: dict) -> dict:
    return {key: list(obj[key]) for key in ("to", "cc") if obj.get(key)}


def _bare(doc: dict) -> dict:
    """An embedded document without its own `@context`."""
    return {k: v for k, v in doc.items() if k != "@context"}


def _activity(kind: str, id: str, actor_uri: str, obj: object, **fields: object) -> dict:
    doc = {"@context": AS_CONTEXT, "id": id, "type": kind, "actor": actor_uri, "object": obj}
    doc.update({k: v for k, v in fields.items() if v is not None})
    return doc


def build_create(actor_uri: str, id: str, obj: dict) -> dict:
    """Create{object}, addressed like the object."""
    doc = _activity("Create", id, actor_uri, _bare(obj), published=obj.get("published"), **_addressed_like(obj))
    doc["@context"] = obj.get("@context", AS_CONTEXT)
    return doc


def build_update(actor_uri: str, id: str, obj: dict, updated: datetime) -> dict:
    """Update{object} of an edited post; Mastodon needs `updated` to apply an edit."""
    edited = {**_bare(obj), "updated": iso_datetime(updated)}
    doc = _activity("Update", id, actor_uri, edited, published=iso_datetime(updated), **_addressed_like(obj))
    doc["@context"] = obj.get("@context", AS_CONTEXT)
    return doc


def build_delete(actor_uri: str, id: str, object_uri: str, former_type: str, *, to: list[str],
                 cc: list[str] | None = None) -> dict:
    """Delete{Tombstone}: Mastodon records the tombstone so a late Create is ignored."""
    tombstone = {"id": object_uri, "type": "Tombstone", "formerType": former_type}
    return _activity("Delete", id, actor_uri, tombstone, to=list(to), cc=list(cc) if cc else None)


def build_delete_actor(actor_uri: str) -> dict:
    """Delete{actor} of a deleted account: Mastodon removes the account and everything it had there."""
    return _activity("Delete", f"{actor_uri}#delete", actor_uri, actor_uri, to=[PUBLIC])


def build_follow(actor_uri: str, id: str, target_uri: str) -> dict:
    """Follow{target}, addressed to the target."""
    return _activity("Follow", id, actor_uri, target_uri, to=[target_uri])


def build_block(actor_uri: str, id: str, target_uri: str) -> dict:
    """Block{target}, addressed to the target: its server ends follows both ways (Mastodon does)."""
    return _activity("Block", id, actor_uri, target_uri, to=[target_uri])


def build_flag(actor_uri: str, id: str, target_uri: str, object_uris: list[str], comment: str) -> dict:
    """Flag{account, statuses}: a report forwarded to the reported account's server, from the instance actor
    (as Mastodon sends it, so the reporter stays unnamed)."""
    return _activity("Flag", id, actor_uri, [target_uri, *object_uris], content=comment or None, to=[target_uri])


def build_accept(follow: dict, actor_uri: str, id: str) -> dict:
    """Accept{Follow} with the Follow embedded exactly as received (Mastodon matches its stored URI)."""
    return _activity("Accept", id, actor_uri, _bare(follow), to=[_ref(follow.get("actor"))])


def build_reject(follow: dict, actor_uri: str, id: str) -> dict:
    """Reject{Follow} with the Follow embedded exactly as received."""
    return _activity("Reject", id, actor_uri, _bare(follow), to=[_ref(follow.get("actor"))])


def build_like(actor_uri: str, id: str, object_uri: str, object_author: str | None) -> dict:
    """Like{object}, addressed to the object's author."""
    return _activity("Like", id, actor_uri, object_uri, to=[object_author] if object_author else None)


def build_announce(actor_uri: str, id: str, object_uri: str, *, followers_uri: str, published: datetime,
                   object_author: str | None) -> dict:
    """Announce{object} (a boost): to Public, cc the followers and the original author."""
    cc = [followers_uri, *([object_author] if object_author else [])]
    return _activity("Announce", id, actor_uri, object_uri, published=iso_datetime(published), to=[PUBLIC], cc=cc)


def build_undo(actor_uri: str, id: str, undone: dict) -> dict:
    """Undo{activity} with the undone activity embedded: Mastodon switches on `object.type`."""
    return _activity("Undo", id, actor_uri, _bare(undone), **_addressed_like(undone))


def build_update_actor(actor: Actor, id: str, updated: datetime) -> dict:
    """Update{Person}: the full actor document, to Public and the followers."""
    person = build_actor(actor)
    doc = _activity("Update", id, actor.uri, _bare(person), published=iso_datetime(updated), to=[PUBLIC],
                    cc=[actor.followers_uri] if actor.followers_uri else None)
    doc["@context"] = person["@context"]
    return doc


def _ref(value: object) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else None
