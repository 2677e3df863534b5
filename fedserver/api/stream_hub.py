"""The streaming API's hub, one per process: a single LISTEN connection, each event rendered once, fanned out.

Events come from PostgreSQL (`repo.stream_events`: NOTIFY in the transaction that made a post or
notification visible), so a client connected to any web process hears about work done in any other.
The hub reads one event at a time, asks the router who is subscribed, drops readers on either side
of a block, renders the Status (or Notification) once per kind of reader — anonymous, or signed in
without any interaction of their own — and hands the same text to every subscriber. Subscribers queue
what they are given and write it from their own task, so one slow client never holds up the rest.
Nothing is done, and no connection is taken, while nobody is connected.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Protocol

import asyncpg
from aiohttp import web

from ..app_keys import POOL, SETTINGS
from ..config import Settings
from ..repo import notifications as notifications_repo
from ..repo import oauth as oauth_repo
from ..repo import status_views, stream_events
from ..repo.session_state import keeps_session_state
from ..repo.status_views import Entry
from . import presenter
from .scopes import grants
from .stream_router import Router, Stream

log = logging.getLogger("fedserver.streaming")

NO_ONE = 0  # no account has this id: renders the flags of a signed-in reader who has not interacted yet
NOTIFICATION_SCOPES = ("read", "read:notifications")
RECHECK_SECONDS = 30.0
REVOKED = "The access token was revoked"
_DATABASE_TROUBLE = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)


class Outgoing:
    """One event as sent: its text for WebSocket clients (per stream label) and for event-stream clients."""

    __slots__ = ("_sse", "_ws", "event", "payload")

    def __init__(self, event: str, payload: str) -> None:
        self.event, self.payload = event, payload
        self._ws: dict[tuple[str, ...], str] = {}
        self._sse: bytes | None = None

    def ws_text(self, stream: Stream) -> str:
        """`{"stream": [...], "event": ..., "payload": ...}`, built once per stream label."""
        key = tuple(stream.label)
        if key not in self._ws:
            self._ws[key] = json.dumps({"stream": stream.label, "event": self.event, "payload": self.payload})
        return self._ws[key]

    def sse_bytes(self) -> bytes:
        """`event: …\\ndata: …\\n\\n`, built once."""
        if self._sse is None:
            self._sse = f"event: {self.event}\ndata: {self.payload}\n\n".encode()
        return self._sse


class Subscriber(Protocol):
    """An open stream: who reads, and how to hand it events (never blocking) or end it."""

    account_id: int | None
    token_id: int | None
    scopes: tuple[str, ...]

    async def push(self, out: Outgoing, stream: Stream) -> None:
        """Send or queue an event; it may not wait on the client (a slow one is queued for, then dropped)."""

    def kill(self, message: str, status: int) -> None: ...


Pairs = list[tuple[Subscriber, Stream]]


class StreamHub:
    """Subscriptions of this process and the listener that feeds them."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings, *, recheck_seconds: float = RECHECK_SECONDS) -> None:
        self.pool, self.settings, self.recheck_seconds = pool, settings, recheck_seconds
        self.router: Router[Subscriber] = Router()
        self.connected: set[Subscriber] = set()
        self._events: asyncio.Queue[str] = asyncio.Queue()
        self._listener: asyncpg.Connection | None = None
        self._tasks: list[asyncio.Task] = []
        self._start_lock = asyncio.Lock()
        # entry id -> (its author and booster, its Status as JSON): a post with many readers comes in chunks
        self._recent: dict[int, tuple[list[int], str | None]] = {}

    # Lifecycle

    async def attach(self, sub: Subscriber) -> None:
        """A new connection; the first one starts listening (so events after this call reach it)."""
        async with self._start_lock:
            if not self._tasks:
                await self._listen()
                self._tasks = [asyncio.create_task(self._consume(), name="stream-consume"),
                               asyncio.create_task(self._watch(), name="stream-watch")]
        self.connected.add(sub)

    def detach(self, sub: Subscriber) -> None:
        """A connection ended."""
        self.router.drop(sub)
        self.connected.discard(sub)

    def shutdown(self) -> None:
        """End every open stream (the server is stopping)."""
        for sub in list(self.connected):
            sub.kill("The server is shutting down", 503)

    async def close(self) -> None:
        """Stop listening and release the connection."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._unlisten()

    async def _listen(self) -> None:
        conn = await self.pool.acquire()
        keeps_session_state(conn)
        try:
            await conn.add_listener(stream_events.CHANNEL, self._notified)
        except BaseException:
            await self.pool.release(conn)
            raise
        self._listener = conn

    async def _unlisten(self) -> None:
        conn, self._listener = self._listener, None
        if conn is None:
            return
        try:
            if not conn.is_closed():
                await conn.remove_listener(stream_events.CHANNEL, self._notified)
            await self.pool.release(conn)
        except _DATABASE_TROUBLE as exc:
            log.debug("releasing the stream listener: %s", exc)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self._events.put_nowait(payload)

    async def _watch(self) -> None:
        """Re-check tokens every `recheck_seconds`; listen again when the listening connection was lost."""
        while True:
            await asyncio.sleep(self.recheck_seconds)
            try:
                if self._listener is None or self._listener.is_closed():
                    log.warning("the stream listener connection was lost; listening again (events meanwhile are lost)")
                    await self._unlisten()
                    await self._listen()
                await self.recheck_tokens()
            except _DATABASE_TROUBLE as exc:
                log.warning("streaming: database unavailable: %s", exc)

    async def recheck_tokens(self) -> None:
        """Close the streams whose token was revoked or whose account is gone."""
        token_ids = {sub.token_id for sub in self.connected if sub.token_id is not None}
        if not token_ids:
            return
        async with self.pool.acquire() as conn:
            live = await oauth_repo.live_token_ids(conn, list(token_ids))
        for sub in list(self.connected):
            if sub.token_id is not None and sub.token_id not in live:
                sub.kill(REVOKED, 401)

    # Events

    async def _consume(self) -> None:
        while True:
            payload = await self._events.get()
            try:
                await self.handle(json.loads(payload))
            except _DATABASE_TROUBLE as exc:
                log.warning("streaming: an event was lost: %s", exc)
            except Exception:
                log.exception("streaming: an event could not be handled: %s", payload[:200])

    async def handle(self, event: dict) -> None:
        """Route one event from the database to the subscribers it concerns."""
        if not self.connected:
            return
        handler = {"home": self._on_home, "public": self._on_public, "list": self._on_exclusive_list, "notification": self._on_notification,
                   "edit": self._on_changed, "delete": self._on_changed, "kill": self._on_kill}.get(event.get("k"))
        if handler is not None:
            await handler(event)

    async def _on_exclusive_list(self, event: dict) -> None:
        """A post of a member of exclusive lists: to those lists' streams (it is in no home timeline)."""
        pairs = self.router.lists(event["l"])
        if not pairs:
            return
        async with self.pool.acquire() as conn:
            actors, text = await self._home_status(conn, event["o"], event["o"])
            pairs = await self._unblocked(conn, actors, pairs)
        if text is not None:
            await send(pairs, Outgoing("update", text))

    async def owns_list(self, account_id: int, list_id: int) -> bool:
        """Whether the list is the account's own (a list stream is only its owner's)."""
        async with self.pool.acquire() as conn:
            return await stream_events.owns_list(conn, account_id, list_id)

    async def _on_home(self, event: dict) -> None:
        pairs = self.router.personal("user", event["a"])
        direct = self.router.personal("direct", event["a"]) if event.get("d") else []
        subscribed_lists = self.router.list_ids() if not event.get("d") else []
        if not pairs and not direct and not subscribed_lists:
            return
        entry_id, object_id = event["e"], event["o"]
        async with self.pool.acquire() as conn:
            actors, text = await self._home_status(conn, entry_id, object_id)
            if subscribed_lists:  # the lists of these readers that hold the author (or the booster)
                pairs += self.router.lists(await stream_events.lists_holding(conn, subscribed_lists, event["a"],
                                                                             actors))
            pairs, direct = await self._unblocked(conn, actors, pairs), await self._unblocked(conn, actors, direct)
            if direct and text is not None:
                await self._send_conversation(conn, json.loads(text), direct)
        if text is not None:
            await send(pairs, Outgoing("update", text))

    async def _home_status(self, conn: asyncpg.Connection, entry_id: int,
                           object_id: int) -> tuple[list[int], str | None]:
        """Who wrote (and boosted) a home entry, and its Status as JSON: looked up once for all its chunks."""
        if entry_id not in self._recent:
            actors = await stream_events.get_entry_actors(conn, entry_id, object_id)
            found = await presenter.present_entries(conn, self.settings, [_entry(entry_id, object_id)], NO_ONE)
            if len(self._recent) >= 16:
                self._recent.pop(next(iter(self._recent)))
            self._recent[entry_id] = (actors, json.dumps(found[0]) if found else None)
        return self._recent[entry_id]

    async def _send_conversation(self, conn: asyncpg.Connection, status: dict, pairs: Pairs) -> None:
        """Mastodon's `direct` stream: a `conversation` event whose accounts are the other participants."""
        people = [int(status["account"]["id"]), *(int(m["id"]) for m in status["mentions"])]
        accounts = {int(a["id"]): a for a in await presenter.present_accounts_by_id(conn, self.settings, people)}
        for sub, stream in pairs:
            others = [a for i, a in accounts.items() if i != sub.account_id]
            body = {"id": status["id"], "unread": sub.account_id != int(status["account"]["id"]),
                    "accounts": others, "last_status": status}
            await sub.push(Outgoing("conversation", json.dumps(body)), stream)

    async def _on_public(self, event: dict) -> None:
        if not self.router.wants_public():
            return
        entry = Entry(event["o"], event["o"], event["o"])
        async with self.pool.acquire() as conn:
            found = await presenter.present_entries(conn, self.settings, [entry], None)
            if not found:
                return
            anonymous = found[0]
            if await stream_events.kept_from_public(conn, int(anonymous["account"]["id"])):
                return  # silenced by the operator: out of the public streams as out of the public timelines
            pairs = self.router.public(local=event["l"], tags=[t["name"] for t in anonymous["tags"]])
            pairs = await self._unblocked(conn, [int(anonymous["account"]["id"])], pairs)
            signed_in = [p for p in pairs if p[0].account_id is not None]
            found = await presenter.present_entries(conn, self.settings, [entry], NO_ONE) if signed_in else []
        if found:
            await send(signed_in, Outgoing("update", json.dumps(found[0])))
        await send([p for p in pairs if p[0].account_id is None], Outgoing("update", json.dumps(anonymous)))

    async def _render_public(self, conn: asyncpg.Connection, object_id: int) -> tuple[dict, dict] | None:
        entry = Entry(object_id, object_id, object_id)
        found = await presenter.present_entries(conn, self.settings, [entry], None)
        if not found:
            return None
        signed_in = await presenter.present_entries(conn, self.settings, [entry], NO_ONE)
        return found[0], signed_in[0]

    async def _on_notification(self, event: dict) -> None:
        account_id = event["a"]
        pairs = self.router.personal("user", [account_id]) + self.router.personal("user:notification", [account_id])
        pairs = [(sub, stream) for sub, stream in pairs if grants(sub.scopes, NOTIFICATION_SCOPES)]
        if not pairs:
            return
        async with self.pool.acquire() as conn:
            row = await notifications_repo.get_notification(conn, account_id, event["n"])
            bodies = await presenter.present_notifications(conn, self.settings, [row], account_id) if row else []
        if bodies:
            await send(pairs, Outgoing("notification", json.dumps(bodies[0])))

    async def _on_changed(self, event: dict) -> None:
        """An edit (`status.update`) or a deletion (`delete`): to those who have the post in their home timeline,
        and to the public streams when it is public."""
        object_id, deleted = event["o"], event["k"] == "delete"
        self._recent.pop(object_id, None)
        async with self.pool.acquire() as conn:
            summary = await stream_events.get_post_summary(conn, object_id)
            if summary is None:
                return
            author_id, visibility, is_local = summary
            readers = self.router.accounts_on("user")
            holders = await stream_events.holders_among(conn, object_id, readers) if readers else []
            pairs = self.router.personal("user", holders)
            public = visibility == "public" and self.router.wants_public()
            if not pairs and not public:
                return
            rendered = None
            if not deleted:
                rendered = await self._render_public(conn, object_id)
                if rendered is None:
                    return
            if public:
                tags = ((await status_views.get_tags(conn, [object_id])).get(object_id, []) if deleted
                        else [t["name"] for t in rendered[0]["tags"]])  # type: ignore[index]
                pairs += self.router.public(local=is_local, tags=tags)
            pairs = await self._unblocked(conn, [author_id], pairs)
        if deleted:
            await send(pairs, Outgoing("delete", str(object_id)))
            return
        anonymous, signed_in = rendered  # type: ignore[misc]
        await send([p for p in pairs if p[0].account_id is not None], Outgoing("status.update", json.dumps(signed_in)))
        await send([p for p in pairs if p[0].account_id is None], Outgoing("status.update", json.dumps(anonymous)))

    async def _on_kill(self, event: dict) -> None:
        for sub in list(self.connected):
            if sub.token_id == event["t"]:
                sub.kill(REVOKED, 401)

    async def _unblocked(self, conn: asyncpg.Connection, actor_ids: list[int], pairs: Pairs) -> Pairs:
        """The pairs whose reader neither blocks nor is blocked by one of `actor_ids` (the author, the booster)."""
        readers = list({sub.account_id for sub, _ in pairs if sub.account_id is not None})
        if not readers or not actor_ids:
            return pairs
        blocked = await stream_events.blocked_among(conn, actor_ids, readers)
        return [(sub, stream) for sub, stream in pairs if sub.account_id not in blocked]


def _entry(entry_id: int, object_id: int) -> Entry:
    return Entry(entry_id, entry_id, object_id, entry_id if entry_id != object_id else None)


async def send(pairs: Pairs, out: Outgoing) -> None:
    """Hand one event to each subscriber: written at once where the socket has room, queued elsewhere."""
    for sub, stream in pairs:
        await sub.push(out, stream)


STREAM_HUB = web.AppKey("stream_hub", StreamHub)


def setup_hub(app: web.Application) -> None:
    """Create the hub with the application, end open streams on shutdown, stop listening on cleanup."""
    async def hub_context(app: web.Application):
        app[STREAM_HUB] = StreamHub(app[POOL], app[SETTINGS])
        yield
        await app[STREAM_HUB].close()

    async def end_streams(app: web.Application) -> None:
        app[STREAM_HUB].shutdown()

    app.cleanup_ctx.append(hub_context)
    app.on_shutdown.append(end_streams)
