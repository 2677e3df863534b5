"""Reading another instance's rewards endpoints: /.well-known/rewards and its tlog-tiles log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from urllib.parse import quote

import aiohttp

from rewards.context import RewardsHttp
from rewards.merkle import Plan, TreeError, read_plan
from rewards.tiles import ENTRIES_LEVEL, TILE_WIDTH, TileID, decode_entry_bundle, tile_hash_reader, tiles_for_nodes

MAX_CHECKPOINT_BYTES = 64 * 1024
MAX_TILE_BYTES = TILE_WIDTH * 32
MAX_BUNDLE_BYTES = TILE_WIDTH * (2 + 65535)
PARALLEL = 16


class FetchError(Exception):
    """A remote resource could not be fetched or was malformed."""


async def _get(session: RewardsHttp, url: str, limit: int) -> tuple[int, bytes]:
    try:
        async with session.get(url) as response:
            body = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > limit:
                    raise FetchError(f"{url}: answer larger than {limit} bytes")
            return response.status, bytes(body)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from None


async def _get_json(session: RewardsHttp, url: str, limit: int) -> object:
    """GET `url` expecting 200 and JSON; FetchError otherwise."""
    status, body = await _get(session, url, limit)
    if status != 200:
        raise FetchError(f"{url}: HTTP {status}")
    try:
        return json.loads(body)
    except ValueError:
        raise FetchError(f"{url}: not JSON") from None


async def fetch_wellknown(session: RewardsHttp, base_url: str) -> dict:
    """GET <base>/.well-known/rewards as JSON."""
    url = f"{base_url.rstrip('/')}/.well-known/rewards"
    doc = await _get_json(session, url, 64 * 1024)
    try:
        _ = doc["domain"], doc["receipts"]["vkey"], doc["log"]["vkey"], doc["log"]["url"], doc["witness"]["vkey"]
        return doc  # type: ignore[return-value]
    except (KeyError, TypeError):
        raise FetchError(f"{url}: not a rewards description") from None


async def fetch_token_policy(session: RewardsHttp, base_url: str) -> dict | None:
    """The `tokens` member of <base>/rewards/policy (None when the instance publishes none)."""
    url = f"{base_url.rstrip('/')}/rewards/policy"
    doc = await _get_json(session, url, 1024 * 1024)
    if not isinstance(doc, dict):
        raise FetchError(f"{url}: not a rewards policy")
    tokens = doc.get("tokens")
    return tokens if isinstance(tokens, dict) else None


async def fetch_balance(session: RewardsHttp, base_url: str, name: str) -> dict:
    """<base>/rewards/balance/<name> as JSON (FetchError on any other answer)."""
    url = f"{base_url.rstrip('/')}/rewards/balance/{quote(name, safe='@')}"
    doc = await _get_json(session, url, 1024 * 1024)
    if not isinstance(doc, dict):
        raise FetchError(f"{url}: not a balance document")
    return doc


class LogClient:
    """tlog-tiles reads under one log prefix."""

    def __init__(self, session: RewardsHttp, prefix: str):
        self.session = session
        self.prefix = prefix.rstrip("/")
        self._limit = asyncio.Semaphore(PARALLEL)

    async def checkpoint(self) -> bytes:
        """The log's current checkpoint."""
        status, body = await _get(self.session, f"{self.prefix}/checkpoint", MAX_CHECKPOINT_BYTES)
        if status != 200:
            raise FetchError(f"{self.prefix}/checkpoint: HTTP {status}")
        return body

    async def tile(self, tile: TileID) -> bytes:
        """A tile's bytes; a missing partial tile falls back to the full tile (tlog-tiles)."""
        async with self._limit:
            status, body = await _get(self.session, f"{self.prefix}/{tile.path()}", MAX_BUNDLE_BYTES)
            if status == 404 and not tile.is_full:
                full = TileID(tile.level, tile.index)
                status, body = await _get(self.session, f"{self.prefix}/{full.path()}", MAX_BUNDLE_BYTES)
        if status != 200:
            raise FetchError(f"{self.prefix}/{tile.path()}: HTTP {status}")
        return body

    async def bundle(self, index: int, width: int) -> list[bytes]:
        """The first `width` entries of entry bundle `index`."""
        tile = TileID(ENTRIES_LEVEL, index, width)
        try:
            entries = decode_entry_bundle(await self.tile(tile))
        except TreeError as exc:
            raise FetchError(f"{self.prefix}/{tile.path()}: {exc}") from None
        if len(entries) < width:
            raise FetchError(f"{self.prefix}/{tile.path()}: {len(entries)} entries, expected {width}")
        return entries[:width]

    async def entries(self, size: int, advance: Callable[[int], None] | None = None) -> list[bytes]:
        """Every entry of a tree of `size` leaves; `advance(n)` is told of each bundle of n entries fetched."""
        bundles = [(n, min(TILE_WIDTH, size - n * TILE_WIDTH)) for n in range((size + TILE_WIDTH - 1) // TILE_WIDTH)]

        async def counted(index: int, width: int) -> list[bytes]:
            part = await self.bundle(index, width)
            if advance is not None:
                advance(width)
            return part

        parts = await asyncio.gather(*(counted(n, w) for n, w in bundles))
        return [entry for part in parts for entry in part]

    async def tiles(self, tiles: Sequence[TileID]) -> dict[TileID, bytes]:
        """Several tiles, fetched in parallel."""
        bodies = await asyncio.gather(*(self.tile(t) for t in tiles))
        return dict(zip(tiles, bodies))

    async def plan(self, plan: Plan, size: int) -> list[bytes]:
        """Evaluate a proof plan for a tree of `size` from the remote tiles."""
        nodes = [node for element in plan for node in element]
        contents = await self.tiles(tiles_for_nodes(nodes, size))
        try:
            return read_plan(plan, tile_hash_reader(size, lambda wanted: [contents[t] for t in wanted]))
        except TreeError as exc:
            raise FetchError(f"{self.prefix}: bad tiles: {exc}") from None
