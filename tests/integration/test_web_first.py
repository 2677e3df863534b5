"""Where web and workers share one process, a worker's turn waits for the requests in flight, briefly."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from fedserver import turns
from fedserver.server import web_first


async def _passes(task: asyncio.Task, passes: int = 20) -> bool:
    """Whether `task` is done after some passes of the loop (no timers: a turn that waits is not done)."""
    for _ in range(passes):
        await asyncio.sleep(0)
    return task.done()


async def _client(release: asyncio.Event, entered: asyncio.Event) -> TestClient:
    async def held(_request: web.Request) -> web.Response:
        entered.set()
        await release.wait()
        return web.Response(text="answered")

    app = web.Application(middlewares=[web_first])
    app.router.add_get("/api/v1/timelines/home", held)
    app.router.add_get("/api/v1/streaming/user", held)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


async def test_a_workers_turn_waits_until_the_request_in_flight_is_answered():
    release, entered = asyncio.Event(), asyncio.Event()
    client = await _client(release, entered)
    try:
        idle_turn = asyncio.create_task(turns.worker_turn(pause=30))
        assert await _passes(idle_turn)  # nothing in flight: one pass of the loop

        request = asyncio.create_task(client.get("/api/v1/timelines/home"))
        await asyncio.wait_for(entered.wait(), 10)
        turn = asyncio.create_task(turns.worker_turn(pause=30))
        assert not await _passes(turn)  # the request goes first
        release.set()
        response = await asyncio.wait_for(request, 10)
        assert await response.text() == "answered"
        await asyncio.wait_for(turn, 1)  # and the worker goes on as soon as it is answered
        assert turns._web.requests == 0 and not turns._web.waiting
    finally:
        release.set()
        await client.close()


async def test_the_wait_is_bounded_and_a_stream_is_not_counted():
    release, entered = asyncio.Event(), asyncio.Event()
    client = await _client(release, entered)
    try:
        stream = asyncio.create_task(client.get("/api/v1/streaming/user"))
        await asyncio.wait_for(entered.wait(), 10)
        turn = asyncio.create_task(turns.worker_turn(pause=30))
        assert await _passes(turn)  # a client listening to a stream does not hold the workers back

        entered.clear()
        request = asyncio.create_task(client.get("/api/v1/timelines/home"))
        await asyncio.wait_for(entered.wait(), 10)
        # A request that takes long holds each turn for `pause` at most: the workers keep a share.
        items = [item async for item in turns.in_turns(range(40), every=8)]
        assert items == list(range(40))
        await asyncio.wait_for(turns.worker_turn(pause=0.01), 5)
        release.set()
        for answer in await asyncio.wait_for(asyncio.gather(stream, request), 10):
            assert answer.status == 200
        assert turns._web.requests == 0
    finally:
        release.set()
        await client.close()
