"""Inbound Flag: another server reports a local account (and some of its posts) to this server's operator."""

from __future__ import annotations

from activities.parse import InboundActivity
from activities.sanitize import html_to_text

from ...dispatch import DONE, InboundContext, Result, ignored
from ...repo import actors as actors_repo
from ...repo import moderation as repo
from ..reports import MAX_COMMENT, MAX_STATUSES
from .common import remote_actor


def _uris(value: object) -> list[str]:
    items = value if isinstance(value, list) else [value]
    found = []
    for item in items[:MAX_STATUSES + 1]:
        uri = item.get("id") if isinstance(item, dict) else item
        if isinstance(uri, str):
            found.append(uri)
    return found


async def on_flag(ctx: InboundContext, act: InboundActivity) -> Result:
    """A report from another server about a local account (and its posts): stored for the operator."""
    sender = await remote_actor(ctx, act.actor)
    uris = _uris(act.raw.get("object"))
    content = act.raw.get("content")
    comment = html_to_text(content, max_chars=MAX_COMMENT) if isinstance(content, str) else ""
    async with ctx.pool.acquire() as conn, conn.transaction():
        target = None
        for uri in uris:
            actor = await actors_repo.get_actor_by_uri(conn, uri)
            if actor is not None and actor.is_local:
                target = actor
                break
        objects = await repo.local_objects_by_uri(conn, uris)
        if target is None and objects:
            target = await actors_repo.get_actor_by_id(conn, objects[0][1])
        if target is None:
            return ignored("the Flag names no account of this server")
        report_id = await repo.insert_report(
            conn, reporter_id=sender.id, target_id=target.id,
            status_ids=[i for i, author in objects if author == target.id], comment=comment, category="other",
            rule_ids=[], forwarded=False, is_remote=True, flag_uri=act.id)
    return DONE if report_id is not None else ignored("this Flag was received before")
