"""Actors: the URL layout of local actors and the actor document other servers read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .context import ACTOR_CONTEXT
from .util import iso_datetime

INSTANCE_ACTOR_PATH = "/actor"


@dataclass(frozen=True)
class ActorUrls:
    """Every URL of one local actor, derived from the instance origin and its path."""

    id: str
    key_id: str
    inbox: str
    outbox: str
    followers: str
    following: str
    featured: str
    featured_tags: str
    shared_inbox: str
    url: str


def local_actor_urls(base_url: str, username: str) -> ActorUrls:
    """URLs of the local account `username` (actor `{base}/users/{name}`)."""
    actor = f"{base_url}/users/{username}"
    return _urls(base_url, actor, profile=f"{base_url}/@{username}")


def instance_actor_urls(base_url: str) -> ActorUrls:
    """URLs of the instance actor that signs fetches on behalf of the server."""
    return _urls(base_url, f"{base_url}{INSTANCE_ACTOR_PATH}", profile=f"{base_url}/about")


def _urls(base_url: str, actor: str, profile: str) -> ActorUrls:
    return ActorUrls(
        id=actor,
        key_id=f"{actor}#main-key",
        inbox=f"{actor}/inbox",
        outbox=f"{actor}/outbox",
        followers=f"{actor}/followers",
        following=f"{actor}/following",
        featured=f"{actor}/collections/featured",
        featured_tags=f"{actor}/collections/tags",
        shared_inbox=f"{base_url}/inbox",
        url=profile,
    )


@dataclass(frozen=True)
class Actor:
    """An actor as this server knows it, local or remote."""

    id: int
    uri: str
    is_local: bool
    username: str
    domain: str
    actor_type: str
    display_name: str
    summary: str
    url: str | None
    inbox_uri: str
    outbox_uri: str | None
    shared_inbox_uri: str | None
    followers_uri: str | None
    following_uri: str | None
    featured_uri: str | None
    key_id: str
    public_key_pem: str
    manually_approves_followers: bool
    discoverable: bool
    indexable: bool
    icon_url: str | None
    icon_media_type: str | None
    image_url: str | None
    image_media_type: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None

    @property
    def acct(self) -> str:
        """`name@domain`, as WebFinger and Mastodon show it."""
        return f"{self.username}@{self.domain}"


def _image(url: str | None, media_type: str | None) -> dict | None:
    if not url:
        return None
    image = {"type": "Image", "url": url}
    if media_type:
        image["mediaType"] = media_type
    return image


def build_actor(actor: Actor) -> dict:
    """The ActivityPub document of a local actor, with every field Mastodon reads."""
    doc: dict = {
        "@context": ACTOR_CONTEXT,
        "id": actor.uri,
        "type": actor.actor_type,
        "preferredUsername": actor.username,
        "name": actor.display_name or actor.username,
        "summary": actor.summary,
        "url": actor.url or actor.uri,
        "published": iso_datetime(actor.created_at),
        "inbox": actor.inbox_uri,
        "outbox": actor.outbox_uri,
        "followers": actor.followers_uri,
        "following": actor.following_uri,
        "featured": actor.featured_uri,
        "featuredTags": f"{actor.uri}/collections/tags",
        "endpoints": {"sharedInbox": actor.shared_inbox_uri},
        "manuallyApprovesFollowers": actor.manually_approves_followers,
        "discoverable": actor.discoverable,
        "indexable": actor.indexable,
        "memorial": False,
        "attachment": [],
        "tag": [],
        "publicKey": {"id": actor.key_id, "owner": actor.uri, "publicKeyPem": actor.public_key_pem},
    }
    for key, value in (("icon", _image(actor.icon_url, actor.icon_media_type)),
                       ("image", _image(actor.image_url, actor.image_media_type))):
        if value:
            doc[key] = value
    return {k: v for k, v in doc.items() if v is not None}


def build_tombstone(uri: str, former_type: str, deleted: datetime) -> dict:
    """What a deleted actor's URL serves (with 410 Gone)."""
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": uri,
        "type": "Tombstone",
        "formerType": former_type,
        "deleted": iso_datetime(deleted),
    }
