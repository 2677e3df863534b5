"""MediaAttachment entities (docs.joinmastodon.org/entities/MediaAttachment) and ActivityPub attachments. Pure.

Local uploads come from `media_attachments` rows. Remote posts' attachments are read from
the stored ActivityPub `attachment` list; they have no row, so their id is a stable number
derived from their URL (GET /api/v1/media/:id finds nothing for it, as it should).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from activities.sanitize import MAX_ATTACHMENTS, truncate_text

MAX_DESCRIPTION = 1500
MAX_MEDIA = 4  # attachments per post, as Mastodon
# What we store, by file extension: re-encoded images only.
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}
_REMOTE_TYPES = ("image", "video", "audio")


@dataclass(frozen=True)
class StoredMedia:
    """One uploaded image as stored."""

    id: int
    account_id: int
    object_id: int | None
    position: int | None
    media_type: str
    file_name: str
    preview_file_name: str
    url: str
    preview_url: str
    file_size: int
    width: int
    height: int
    preview_width: int
    preview_height: int
    description: str | None
    focus_x: float
    focus_y: float
    blurhash: str | None
    created_at: datetime


def _dimensions(width: int, height: int) -> dict:
    return {"width": width, "height": height, "size": f"{width}x{height}", "aspect": width / height}


def media_attachment(media: StoredMedia) -> dict:
    """A local upload as a MediaAttachment."""
    return {
        "id": str(media.id),
        "type": "image",
        "url": media.url,
        "preview_url": media.preview_url,
        "remote_url": None,
        "preview_remote_url": None,
        "text_url": None,
        "meta": {
            "original": _dimensions(media.width, media.height),
            "small": _dimensions(media.preview_width, media.preview_height),
            "focus": {"x": round(media.focus_x, 2), "y": round(media.focus_y, 2)},
        },
        "description": media.description,
        "blurhash": media.blurhash,
    }


def _link(value: object) -> str | None:
    """An http(s) URL from a string, a Link object or a list of them."""
    if isinstance(value, list):
        value = next((v for v in value if _link(v)), None)
    if isinstance(value, dict):
        value = value.get("href")
    if isinstance(value, str) and value.startswith(("https://", "http://")) and len(value) <= 2048:
        return value
    return None


def remote_id(url: str) -> str:
    """A stable positive 63-bit id for a remote attachment."""
    return str(int.from_bytes(hashlib.sha256(url.encode()).digest()[:8], "big") >> 1 or 1)


def _positive_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 100_000 else None


def _focus(value: object) -> dict:
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        x, y = (max(-1.0, min(1.0, float(v))) for v in value)
        return {"x": x, "y": y}
    return {"x": 0.0, "y": 0.0}


def remote_attachment(item: object) -> dict | None:
    """A remote post's `attachment` item as a MediaAttachment, or None when it carries no usable URL."""
    if not isinstance(item, dict) or item.get("type") not in ("Document", "Image", "Video", "Audio"):
        return None
    url = _link(item.get("url"))
    if url is None:
        return None
    media_type = item.get("mediaType") if isinstance(item.get("mediaType"), str) else ""
    kind = media_type.split("/", 1)[0] if media_type.split("/", 1)[0] in _REMOTE_TYPES else "unknown"
    if kind == "unknown" and item.get("type") in ("Image", "Video", "Audio"):
        kind = str(item["type"]).lower()
    width, height = _positive_int(item.get("width")), _positive_int(item.get("height"))
    meta: dict = {"focus": _focus(item.get("focalPoint"))}
    if width and height:
        meta["original"] = _dimensions(width, height)
    name, blurhash = item.get("name"), item.get("blurhash")
    return {
        "id": remote_id(url), "type": kind, "url": url, "preview_url": url if kind == "image" else None,
        "remote_url": url, "preview_remote_url": None, "text_url": None, "meta": meta,
        "description": truncate_text(name, MAX_DESCRIPTION) if isinstance(name, str) and name else None,
        "blurhash": blurhash if isinstance(blurhash, str) and 6 <= len(blurhash) <= 200 else None,
    }


def post_media(is_local: bool, document: dict, uploads: list[StoredMedia]) -> list[dict]:
    """A post's MediaAttachments: a remote post's own attachments, else the uploads attached to it."""
    if not is_local and isinstance(document, dict) and "attachment" in document:
        return remote_attachments(document)
    return [media_attachment(upload) for upload in uploads]


def remote_attachments(document: dict) -> list[dict]:
    """The MediaAttachments of a stored remote post document."""
    items = document.get("attachment")
    items = items if isinstance(items, list) else [items]
    found = (remote_attachment(item) for item in items[:MAX_ATTACHMENTS])
    return [entity for entity in found if entity is not None]


def _media_type_of_url(url: str) -> str:
    extension = url.rsplit(".", 1)[-1].lower()
    return MEDIA_TYPES.get(extension, "application/octet-stream")


def attachment_documents(media: list[dict]) -> list[dict]:
    """ActivityPub attachments for an outbound Note, from MediaAttachment entities (Mastodon's shape)."""
    documents = []
    for entity in media:
        original = entity.get("meta", {}).get("original", {})
        focus = entity.get("meta", {}).get("focus") or {"x": 0.0, "y": 0.0}
        document = {
            "type": "Document",
            "mediaType": _media_type_of_url(entity["url"]),
            "url": entity["url"],
            "name": entity.get("description"),
            "blurhash": entity.get("blurhash"),
            "focalPoint": [focus["x"], focus["y"]],
        }
        if original.get("width") and original.get("height"):
            document.update(width=original["width"], height=original["height"])
        documents.append(document)
    return documents
