"""How rewards hook into publishing: a local actor's like, share or reply of a member's post issues a receipt
(from policy 2 also of a local account's post, and a share or reply also the curator's receipt: rewards/endorsing.py).

The composition root adds `receipt_hook(settings)` to the publisher's hooks; it reads each
published activity and, for the interactions the points policy counts, calls `issue_receipt`
in the publishing transaction, so the interaction and its receipt commit together. Federation
knows nothing of rewards.
"""

from __future__ import annotations

import asyncpg

from activities.parse import ref
from fedserver.config import Settings
from fedserver.publish import Published, PublishHook
from fedserver.repo import statuses as statuses_repo
from rewards.issue import issue_receipt

# Activity type (and, for an Undo, the undone type) -> receipt kind.
_KINDS = {"Like": "like", "Announce": "announce"}
_UNDO_KINDS = {"Like": "undo-like", "Announce": "undo-announce"}


def interaction(activity: dict) -> tuple[str, str] | None:
    """(receipt kind, post id) of an activity that may earn or take back points, else None."""
    kind, obj = activity.get("type"), activity.get("object")
    if kind in _KINDS and ref(obj):
        return _KINDS[kind], ref(obj)  # type: ignore[return-value]
    if kind == "Create" and isinstance(obj, dict) and ref(obj.get("inReplyTo")):
        return "reply", ref(obj.get("inReplyTo"))  # type: ignore[return-value]
    if kind == "Undo" and isinstance(obj, dict) and obj.get("type") in _UNDO_KINDS and ref(obj.get("object")):
        return _UNDO_KINDS[obj["type"]], ref(obj.get("object"))  # type: ignore[return-value]
    return None


def receipt_hook(settings: Settings) -> PublishHook:
    """The publish hook that issues reward receipts for this instance."""

    async def issue_for(conn: asyncpg.Connection, published: Published) -> None:
        found = interaction(published.activity)
        if found is None:
            return
        kind, post_uri = found
        post = await statuses_repo.get_object_by_uri(conn, post_uri)
        if post is not None and post.author_uri:
            await issue_receipt(conn, settings, kind, published.actor.uri, post_uri, post.author_uri)

    return issue_for
