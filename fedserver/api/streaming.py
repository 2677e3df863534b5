"""Mastodon's streaming API: the WebSocket at /api/v1/streaming, the event-stream endpoints, and the health check.

A WebSocket client subscribes with `{"type":"subscribe","stream":"user"}` (and `tag`/`list` where the
stream needs them) or names one stream as `?stream=` when it connects; it receives
`{"stream":["user"],"event":"update","payload":"<Status as JSON>"}`. The event-stream endpoints
(`/api/v1/streaming/user`, `/public/local`, `/hashtag?tag=`, …) send `event: update\\ndata: …\\n\\n`
and a `:thump` comment every 15 seconds, as Mastodon's streaming server does.

The access token comes from `Authorization: Bearer`, the `access_token` query parameter or the
`Sec-WebSocket-Protocol` header (answered with the same protocol, as Mastodon does). Public and
hashtag streams are open to anonymous readers, as the public timeline is here.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque

from aiohttp import WSCloseCode, WSMsgType, web

from activities.text import normalize_hashtag

from ..errors import HTTPError
from .auth import INVALID_TOKEN, Auth, bearer_token, current_auth, resolve_token
from .scopes import grants
from .stream_hub import STREAM_HUB, Outgoing, StreamHub
from .stream_router import NO_LIST, Stream, StreamError, check_access, parse_stream

HEARTBEAT_SECONDS = 15.0
BACKLOG = 1000  # events queued for one client before it is judged too slow and disconnected
DIRECT_WRITE_LIMIT = 16 * 1024  # bytes waiting in a socket's buffer under which an event is written at once
_CLOSE_CODES = {401: WSCloseCode.POLICY_VIOLATION, 503: WSCloseCode.GOING_AWAY}
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no",
                "Access-Control-Allow-Origin": "*"}  # sent before the CORS middleware could add it


def error_text(message: str, status: int) -> str:
    """An error as Mastodon's streaming server sends it on a WebSocket."""
    return json.dumps({"error": message, "status": status})


class _Connection:
    """What every open stream shares: the reader, its queue of texts, and the end it is told to make."""

    __slots__ = ("__weakref__", "_ending", "_queue", "account_id", "scopes", "token_id")

    def __init__(self, caller: Auth | None) -> None:
        self.account_id = caller.account_id if caller else None
        self.token_id = caller.token_id if caller else None
        self.scopes = caller.scopes if caller else ()
        self._queue: deque = deque()
        self._ending: tuple[str, int] | None = None

    def granted(self, scopes: tuple[str, ...]) -> bool:
        """Whether the token holds one of `scopes`."""
        return grants(self.scopes, scopes)

    def _enqueue(self, item: object) -> None:
        if self._ending is not None:
            return
        if len(self._queue) >= BACKLOG:
            self.kill("The client does not read its stream fast enough", 429)
            return
        self._queue.append(item)
        self._wake()

    def kill(self, message: str, status: int) -> None:
        """End the stream after telling the client why."""
        if self._ending is None:
            self._ending = (message, status)
            self._wake()

    def _wake(self) -> None:
        raise NotImplementedError


class WebSocketConnection(_Connection):
    """A WebSocket client; a writer task exists only while there is something to send."""

    __slots__ = ("_transport", "_writer", "ws")

    def __init__(self, ws: web.WebSocketResponse, caller: Auth | None, transport: asyncio.Transport | None) -> None:
        super().__init__(caller)
        self.ws, self._transport = ws, transport
        self._writer: asyncio.Task | None = None

    async def push(self, out: Outgoing, stream: Stream) -> None:
        """Send an event now when the socket has room (the usual case: no task, no wait), else queue it."""
        text = out.ws_text(stream)
        if self._writer is None and not self._queue and self._ending is None and self._has_room():
            try:
                await self.ws.send_str(text)  # below the buffer's high-water mark aiohttp writes without waiting
            except (ConnectionError, RuntimeError):
                pass  # the client went away; the handler notices and detaches
            return
        self._enqueue(text)

    def _has_room(self) -> bool:
        transport = self._transport
        return (transport is not None and not transport.is_closing() and not self.ws.closed
                and transport.get_write_buffer_size() < DIRECT_WRITE_LIMIT)

    def say(self, text: str) -> None:
        """Queue a text of our own (an error answer)."""
        self._enqueue(text)

    def _wake(self) -> None:
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        try:
            while self._queue and not self.ws.closed:
                await self.ws.send_str(self._queue.popleft())
            if self._ending is not None and not self.ws.closed:
                message, status = self._ending
                await self.ws.send_str(error_text(message, status))
                await self.ws.close(code=_CLOSE_CODES.get(status, WSCloseCode.POLICY_VIOLATION),
                                    message=message.encode()[:120])
        except (ConnectionError, RuntimeError):
            self._queue.clear()  # the client went away; the handler notices and detaches
        finally:
            self._writer = None
            if self._queue and not self.ws.closed:
                self._wake()

    async def stop(self) -> None:
        """Wait for the writer (if any) when the connection ends."""
        if self._writer is not None:
            self._writer.cancel()


class EventStreamConnection(_Connection):
    """A text/event-stream client: its handler writes the queue and the heartbeats."""

    __slots__ = ("_signal",)

    def __init__(self, caller: Auth | None) -> None:
        super().__init__(caller)
        self._signal = asyncio.Event()

    async def push(self, out: Outgoing, stream: Stream) -> None:
        """Queue an event for this client."""
        self._enqueue(out.sse_bytes())

    def _wake(self) -> None:
        self._signal.set()

    async def run(self, response: web.StreamResponse) -> None:
        """Write events as they come, a heartbeat comment when idle, until told to end or the client leaves."""
        await response.write(b":)\n")
        while True:
            try:
                await asyncio.wait_for(self._signal.wait(), HEARTBEAT_SECONDS)
            except TimeoutError:
                await response.write(b":thump\n")
                continue
            self._signal.clear()
            while self._queue:
                await response.write(self._queue.popleft())
            if self._ending is not None:
                message, status = self._ending
                await response.write(f"event: error\ndata: {error_text(message, status)}\n\n".encode())
                return


# Who is asking


async def _caller(request: web.Request) -> tuple[Auth | None, str | None]:
    """The token's owner (None when no token was sent) and the WebSocket protocol to answer with; 401 if bad."""
    if bearer_token(request):
        caller = current_auth(request)
        if caller is None:
            raise HTTPError(401, INVALID_TOKEN)
        return caller, None
    token, protocol = request.query.get("access_token"), None
    if not token and request.headers.get("Sec-WebSocket-Protocol"):
        protocol = request.headers["Sec-WebSocket-Protocol"].split(",")[0].strip()
        token = protocol
    if not token:
        return None, None
    caller = await resolve_token(request, token)
    if caller is None:
        raise HTTPError(401, INVALID_TOKEN)
    return caller, protocol


async def _stream_from(hub: StreamHub, name: str | None, params, caller: Auth | None) -> Stream:
    """A stream the caller may read (a list only of one's own); StreamError otherwise."""
    stream = parse_stream(name, tag=params.get("tag"), list_id=params.get("list"), normalize_tag=normalize_hashtag)
    check_access(stream, caller.account_id if caller else None,
                 lambda scopes: caller is not None and grants(caller.scopes, scopes))
    if stream.name == "list" and not await hub.owns_list(caller.account_id, int(stream.param)):  # type: ignore
        raise StreamError(NO_LIST, 404)
    return stream


async def _initial_stream(request: web.Request, name: str | None, caller: Auth | None) -> Stream:
    try:
        return await _stream_from(request.config_dict[STREAM_HUB], name, request.query, caller)
    except StreamError as exc:
        raise HTTPError(exc.status, exc.message) from None


# Handlers


async def streaming_get(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/streaming: the WebSocket (or, without an upgrade, the event stream named by `?stream=`)."""
    caller, protocol = await _caller(request)
    name = request.query.get("stream")
    initial = await _initial_stream(request, name, caller) if name else None
    # No permessage-deflate (as Mastodon's streaming server, whose `ws` leaves it off): one event goes to
    # many clients, and compressing it once per connection would cost more than sending it.
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, protocols=(protocol,) if protocol else (),
                               timeout=2.0, compress=False)
    if not ws.can_prepare(request).ok:
        if initial is None:
            raise HTTPError(400, "Expected a WebSocket upgrade, or ?stream= for an event stream")
        return await _event_stream(request, caller, initial)
    hub = request.config_dict[STREAM_HUB]
    conn = WebSocketConnection(ws, caller, request.transport)  # type: ignore[arg-type]
    await hub.attach(conn)
    try:
        if initial is not None:
            hub.router.subscribe(conn, initial, conn.account_id)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await _on_client_message(hub, conn, msg.data)
    finally:
        hub.detach(conn)
        await conn.stop()
    return ws


async def _on_client_message(hub: StreamHub, conn: WebSocketConnection, data: str) -> None:
    """`{"type": "subscribe"|"unsubscribe", "stream": …, "tag": …, "list": …}`; anything wrong is answered."""
    try:
        message = json.loads(data)
        if not isinstance(message, dict):
            raise StreamError("Expected a JSON object")
        kind = message.get("type")
        if kind not in ("subscribe", "unsubscribe"):
            raise StreamError(f"Unknown message type {kind!r}")
        stream = await _stream_from(hub, message.get("stream"), message, _as_auth(conn))
    except json.JSONDecodeError:
        conn.say(error_text("Invalid JSON", 400))
        return
    except StreamError as exc:
        conn.say(error_text(exc.message, exc.status))
        return
    if kind == "subscribe":
        hub.router.subscribe(conn, stream, conn.account_id)
    else:
        hub.router.unsubscribe(conn, stream)


def _as_auth(conn: WebSocketConnection) -> Auth | None:
    if conn.token_id is None:
        return None
    return Auth(conn.token_id, 0, conn.account_id, None, conn.scopes)


_SSE_PATHS = {"user": "user", "user/notification": "user:notification", "public": "public",
              "public/local": "public:local", "public/remote": "public:remote", "hashtag": "hashtag",
              "hashtag/local": "hashtag:local", "list": "list", "direct": "direct"}


async def event_stream_get(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/streaming/{user,user/notification,public,public/local,hashtag,direct,…}: an event stream."""
    name = _SSE_PATHS.get(request.match_info["path"].strip("/"))
    if name is None:
        raise HTTPError(404, "Unknown stream type")
    caller, _ = await _caller(request)
    return await _event_stream(request, caller, await _initial_stream(request, name, caller))


async def _event_stream(request: web.Request, caller: Auth | None, stream: Stream) -> web.StreamResponse:
    hub = request.config_dict[STREAM_HUB]
    conn = EventStreamConnection(caller)
    await hub.attach(conn)
    try:
        hub.router.subscribe(conn, stream, conn.account_id)
        response = web.StreamResponse(headers=_SSE_HEADERS)
        await response.prepare(request)
        try:
            await conn.run(response)
        except (ConnectionError, RuntimeError):
            pass  # the client went away
    finally:
        hub.detach(conn)
    return response


async def health_get(request: web.Request) -> web.Response:
    """GET /api/v1/streaming/health: `OK`, as Mastodon's streaming server answers."""
    return web.Response(text="OK", content_type="text/plain")


def setup_routes(api: web.Application) -> None:
    """Routes relative to the /api sub-application."""
    api.router.add_get("/v1/streaming/health", health_get)
    api.router.add_get("/v1/streaming", streaming_get)
    api.router.add_get("/v1/streaming/", streaming_get)
    api.router.add_get(r"/v1/streaming/{path:[a-z/]+}", event_stream_get)
