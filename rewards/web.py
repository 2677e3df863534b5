"""HTTP: /.well-known/rewards, the points policy, tlog-tiles, proofs, receipts, balances, the witness.

Handlers only parse and present; the services live in receipts.py, witness.py and
logstore.py. Tiles beyond the published checkpoint are 404; full tiles and bundles
are immutable and cached for a year, partial ones briefly.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from aiohttp import web

from fedserver.app_keys import POOL, SETTINGS
from fedserver.config import Settings
from fedserver.errors import HTTPError
from rewards.balance import Balance
from rewards.checkpoint import TlogProof, build_tlog_proof
from rewards.context import RewardsContext, endorsement_policy, load_context, log_url, token_policy, witness_url
from rewards.logstore import get_state, plan_hashes, read_bundle, read_tile_for_serving
from rewards.merkle import TreeError, inclusion_plan
from rewards.minting import UnknownAccount, account_balance, balance_document
from rewards.policy import build_policy
from rewards.ranking import formula as ranking_formula
from rewards.ranking_web import setup_ranking_routes
from rewards.receipts import ReceiptBatcher, ReceiptRefused, check_receipt
from rewards.tiles import (
    ENTRIES_LEVEL,
    TILE_WIDTH,
    TileID,
    encode_entry_bundle,
    parse_tile_path,
    tile_width,
)
from rewards.witness import add_checkpoint, monitored_checkpoint

IMMUTABLE = "public, max-age=31536000, immutable"
PARTIAL = "public, max-age=60"
CHECKPOINT_CACHE = "public, max-age=2"
TEXT = "text/plain"
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass
class _Runtime:
    """Filled at start-up: the process's rewards context and receipt batcher."""

    ctx: RewardsContext | None = None
    batcher: ReceiptBatcher | None = None


RUNTIME = web.AppKey("rewards_runtime", _Runtime)


def _ctx(request: web.Request) -> RewardsContext:
    ctx = request.config_dict[RUNTIME].ctx
    if ctx is None:
        raise HTTPError(503, "rewards are starting")
    return ctx


def rewards_context(request: web.Request) -> RewardsContext:
    """This instance's reward keys and federation, for another package's handler (503 while starting)."""
    return _ctx(request)


async def _lifecycle(app: web.Application):
    runtime = app[RUNTIME]
    runtime.ctx = await load_context(app[POOL], app[SETTINGS])
    runtime.batcher = ReceiptBatcher(runtime.ctx, app[POOL])
    runtime.batcher.start()
    yield
    await runtime.batcher.stop()


def describe(ctx: RewardsContext) -> dict:
    """The /.well-known/rewards document: our keys, origin and endpoints."""
    settings, keys, vkeys = ctx.settings, ctx.keys, ctx.keys.vkeys()
    return {
        "domain": keys.domain,
        "policy_version": ctx.points.version,
        "receipts": {"name": keys.receipts.name, "vkey": vkeys["receipts"],
                     "url": f"{settings.base_url}/rewards/receipts"},
        "log": {"origin": keys.origin, "vkey": vkeys["log"], "url": log_url(settings)},
        "witness": {"name": keys.witness.name, "vkey": vkeys["witness"], "url": witness_url(settings)},
        "policy": f"{settings.base_url}/rewards/policy",
    }


async def wellknown_get(request: web.Request) -> web.Response:
    """`/.well-known/rewards`: keys and endpoints as JSON."""
    headers = {"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"}
    return web.json_response(describe(_ctx(request)), headers=headers)


async def actor_fields(request: web.Request) -> dict:
    """Extra fields for the instance actor document (its reward keys)."""
    ctx = request.config_dict[RUNTIME].ctx
    if ctx is None:
        return {}
    vkeys = ctx.keys.vkeys()
    return {"rewards": {"id": f"{ctx.settings.base_url}/.well-known/rewards", **vkeys}}


async def policy_get(request: web.Request) -> web.Response:
    """`/rewards/policy`: the points policy and the federation's tlog-policy."""
    ctx = _ctx(request)
    body = {**ctx.points.as_dict(), "origin": ctx.keys.origin, "federation_policy": build_policy(ctx.policy())}
    body["tokens"] = token_policy(ctx.settings).as_dict()  # settlement, minting and expiry numbers
    if ctx.points.version >= 2:  # budget, reciprocal pairs, member quota (rewards/endorse.py)
        body["endorsement"] = endorsement_policy(ctx.settings).as_dict()
    body["ranking"] = ranking_formula()  # the open ranking's formula, version and parameters
    return web.json_response(body, headers={"Cache-Control": "public, max-age=60"})


async def _published(request: web.Request) -> tuple[int, bytes]:
    async with request.config_dict[POOL].acquire() as conn:
        state = await get_state(conn)
    if state.published_checkpoint is None or state.published_size is None:
        raise HTTPError(404, "no checkpoint published yet")
    return state.published_size, state.published_checkpoint


async def checkpoint_get(request: web.Request) -> web.Response:
    """`/rewards/log/checkpoint`: the latest cosigned checkpoint."""
    _, checkpoint = await _published(request)
    return web.Response(body=checkpoint, content_type=TEXT, charset="utf-8",
                        headers={"Cache-Control": CHECKPOINT_CACHE})


def _servable(tile: TileID, size: int) -> bool:
    available = tile_width(max(tile.level, 0), tile.index, size)
    return tile.width <= available if tile.width < TILE_WIDTH else available == TILE_WIDTH


async def tile_get(request: web.Request) -> web.Response:
    """`/rewards/log/tile/<L>/<N>[.p/<W>]` and `/rewards/log/tile/entries/<N>[.p/<W>]`."""
    try:
        tile = parse_tile_path("tile/" + request.match_info["tail"])
    except TreeError:
        raise HTTPError(404, "not a tile path") from None
    size, _ = await _published(request)
    if not _servable(tile, size):
        raise HTTPError(404, "tile beyond the published tree")
    async with request.config_dict[POOL].acquire() as conn:
        if tile.level == ENTRIES_LEVEL:
            entries = await read_bundle(conn, tile.index, tile.width)
            data = encode_entry_bundle(entries) if len(entries) == tile.width else None
        else:
            data = await read_tile_for_serving(conn, tile)
    if data is None:
        raise HTTPError(500, "tile missing from storage")
    cache = IMMUTABLE if tile.is_full else PARTIAL
    return web.Response(body=data, content_type="application/octet-stream", headers={"Cache-Control": cache})


async def proof_get(request: web.Request) -> web.Response:
    """`/rewards/proof/<index>`: a c2sp.org/tlog-proof@v1 against the published checkpoint."""
    raw = request.match_info["index"]
    if not raw.isdigit() or len(raw) > 19:
        raise HTTPError(400, "index must be a non-negative integer")
    index = int(raw)
    size, checkpoint = await _published(request)
    if index >= size:
        raise HTTPError(404, f"entry {index} is not in the published tree of size {size}")
    async with request.config_dict[POOL].acquire() as conn:
        path = await plan_hashes(conn, inclusion_plan(index, size), size)
    body = build_tlog_proof(TlogProof(index, tuple(path), checkpoint))
    return web.Response(body=body, content_type=TEXT, charset="utf-8", headers={"Cache-Control": IMMUTABLE})


async def receipts_post(request: web.Request) -> web.Response:
    """`POST /rewards/receipts`: countersign and append a member's receipt."""
    ctx = _ctx(request)
    body = await request.read()
    try:
        checked = await check_receipt(ctx, request.config_dict[POOL], body)
        result = await request.config_dict[RUNTIME].batcher.submit(checked)
    except ReceiptRefused as exc:
        raise HTTPError(exc.status, exc.message) from None
    return web.json_response({
        "index": result.index, "countersignature": result.countersignature, "origin": ctx.keys.origin,
        "duplicate": result.duplicate,
    })


async def published_balance(conn, settings: Settings, actor_uri: str) -> Balance:
    """An account's balance over the published (witnessed) part of our log, now: settled points not yet
    converted, points still in the settlement window, tokens (what /rewards/balance serves, for pages)."""
    found, _size = await account_balance(conn, settings, actor_uri)
    return found


async def balance_get(request: web.Request) -> web.Response:
    """`/rewards/balance/<name or name@domain>`: the balance folded from the published log (rewards/balance.py)."""
    ctx = _ctx(request)
    try:
        async with request.config_dict[POOL].acquire() as conn:
            document = await balance_document(conn, ctx, request.match_info["acct"])
    except UnknownAccount as exc:
        raise HTTPError(404, str(exc)) from None
    return web.json_response(document, headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"})


async def witness_add_checkpoint_post(request: web.Request) -> web.Response:
    """`POST /rewards/witness/add-checkpoint` (tlog-witness)."""
    ctx = _ctx(request)
    reply = await add_checkpoint(request.config_dict[POOL], ctx.policy(), ctx.keys, await request.read(),
                                 int(time.time()))
    return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type,
                        charset="utf-8" if reply.content_type == TEXT else None)


async def witness_checkpoint_get(request: web.Request) -> web.Response:
    """`/rewards/witness/<hex sha256(origin)>/checkpoint`: what we last cosigned for a log."""
    hex_hash = request.match_info["hash"]
    if not _HEX64.fullmatch(hex_hash):
        raise HTTPError(404, "expected the hex SHA-256 of a log origin")
    ctx = _ctx(request)
    async with request.config_dict[POOL].acquire() as conn:
        body = await monitored_checkpoint(conn, ctx.keys, hex_hash)
    if body is None:
        raise HTTPError(404, "no checkpoint cosigned for that log")
    return web.Response(body=body, content_type=TEXT, charset="utf-8", headers={"Cache-Control": "no-cache"})


def setup_routes(app: web.Application) -> None:
    """Register the rewards routes and the start-up that loads keys and policy."""
    app[RUNTIME] = _Runtime()
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_get("/.well-known/rewards", wellknown_get)
    app.router.add_get("/rewards/policy", policy_get)
    setup_ranking_routes(app, _ctx)
    app.router.add_get("/rewards/log/checkpoint", checkpoint_get)
    app.router.add_get("/rewards/log/tile/{tail:.+}", tile_get)
    app.router.add_get("/rewards/proof/{index}", proof_get)
    app.router.add_post("/rewards/receipts", receipts_post)
    app.router.add_get("/rewards/balance/{acct}", balance_get)
    app.router.add_post("/rewards/witness/add-checkpoint", witness_add_checkpoint_post)
    app.router.add_get("/rewards/witness/{hash}/checkpoint", witness_checkpoint_get)
