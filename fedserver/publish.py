"""Publishing: what a local actor sends is stored and queued for delivery in the caller's transaction.

`Publisher.publish(conn, actor, activity, inboxes)` records the activity (served at its id,
listed in the outbox), stores its body once and queues one delivery per distinct inbox, then
runs the hooks that other packages registered at start-up (rewards issues its receipts from
one), all in the transaction the caller opened. So a post, an order move, a stock change and
their deliveries commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import asyncpg

from activities.actor import Actor

from .config import Settings
from .repo import actors as actors_repo
from .repo import deliveries as deliveries_repo


@dataclass(frozen=True)
class Published:
    """An activity a local actor just published, as hooks see it."""

    actor: Actor
    activity: dict
    object_uri: str | None
    visibility: str


# Runs in the publishing transaction; an exception rolls the whole publication back.
PublishHook = Callable[[asyncpg.Connection, Published], Awaitable[None]]


@dataclass(frozen=True)
class Publisher:
    """Publishes for this instance; `hooks` are what other packages do with each publication."""

    settings: Settings
    hooks: tuple[PublishHook, ...] = ()
    _instance: list[Actor] = field(default_factory=list, compare=False, repr=False)

    async def instance_actor(self, conn: asyncpg.Connection) -> Actor:
        """This instance's own actor (type Application), read once: notices are authored by it."""
        if not self._instance:
            account = await actors_repo.get_instance_account(conn)
            if account is None:
                raise RuntimeError("this instance has no instance actor yet: it is made when the server starts")
            self._instance.append(account.actor)
        return self._instance[0]

    async def publish(self, conn: asyncpg.Connection, actor: Actor, activity: dict, inboxes: Iterable[str], *,
                      object_uri: str | None = None, visibility: str = "direct") -> str:
        """Store `activity`, queue it for `inboxes` and run the hooks, in the caller's transaction; its id."""
        await deliveries_repo.record_and_enqueue(conn, activity, actor.id, inboxes, object_uri=object_uri,
                                                 visibility=visibility)
        published = Published(actor, activity, object_uri, visibility)
        for hook in self.hooks:
            await hook(conn, published)
        return activity["id"]
