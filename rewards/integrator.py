"""Integration and checkpoint signing: the background half of the log.

Sequenced entries are always a contiguous prefix (see ``logstore.append_entries``),
so the integrator takes the next batch after the integrated size, extends the
right edge with ``tiles.integrate`` and writes the changed tiles and the new root in
one transaction. Checkpoints are signed only for integrated sizes, never smaller
than the last signed one, so the log key never signs two inconsistent checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from rewards.checkpoint import Checkpoint, build_checkpoint
from rewards.keys import RewardKeys
from rewards.logstore import LogState, get_entries_from, get_state, read_tiles, set_signed, set_tree, write_tiles
from rewards.merkle import CompactRange, TreeError, leaf_hash, range_nodes
from rewards.note import sign_note
from rewards.tiles import integrate, partial_tiles, tile_hash_reader, tiles_for_nodes

DEFAULT_BATCH = 4096


@dataclass
class EdgeCache:
    """The right edge of the integrated tree, kept between batches (keyed by its size)."""

    edge: CompactRange | None = None


async def load_edge(conn: asyncpg.Connection, size: int) -> CompactRange:
    """Read the right edge of a stored tree of `size` leaves from its tiles."""
    nodes = range_nodes(0, size)
    if not nodes:
        return CompactRange()
    tiles = tiles_for_nodes(nodes, size)
    contents = dict(zip(tiles, await read_tiles(conn, tiles)))
    reader = tile_hash_reader(size, lambda wanted: [contents[t] for t in wanted])
    return CompactRange(size, tuple(reader(nodes)))


async def _partials(conn: asyncpg.Connection, size: int) -> dict[int, bytes]:
    tiles = partial_tiles(size)
    return {t.level: data for t, data in zip(tiles, await read_tiles(conn, tiles))}


def _contiguous(entries: list[tuple[int, bytes]], start: int) -> list[bytes]:
    leaves = []
    for offset, (idx, leaf) in enumerate(entries):
        if idx != start + offset:
            break  # cannot happen with append_entries; stop at a gap rather than skip it
        leaves.append(leaf)
    return leaves


async def integrate_batch(conn: asyncpg.Connection, cache: EdgeCache, limit: int = DEFAULT_BATCH) -> int:
    """Integrate up to `limit` sequenced entries in one transaction; returns how many."""
    async with conn.transaction():
        state = await get_state(conn, for_update=True)
        size = state.tree_size
        leaves = _contiguous(await get_entries_from(conn, size, limit), size)
        if not leaves:
            return 0
        edge = cache.edge if cache.edge is not None and cache.edge.size == size else await load_edge(conn, size)
        if edge.root() != state.tree_root:
            raise TreeError(f"stored tiles do not match the stored root at size {size}")
        result = integrate(edge, await _partials(conn, size), [leaf_hash(leaf) for leaf in leaves])
        await write_tiles(conn, result.tiles)
        await set_tree(conn, size, result.size, result.root)
    cache.edge = result.edge
    return len(leaves)


async def integrate_all(conn: asyncpg.Connection, cache: EdgeCache, limit: int = DEFAULT_BATCH) -> int:
    """Integrate until nothing is left; returns how many entries."""
    total = 0
    while n := await integrate_batch(conn, cache, limit):
        total += n
    return total


async def sign_checkpoint(conn: asyncpg.Connection, keys: RewardKeys) -> LogState:
    """Sign a checkpoint for the integrated tree if it is newer than the last signed one."""
    async with conn.transaction():
        state = await get_state(conn, for_update=True)
        if state.signed_size is not None and state.signed_size >= state.tree_size:
            return state
        text = build_checkpoint(Checkpoint(keys.origin, state.tree_size, state.tree_root))
        await set_signed(conn, state.tree_size, sign_note(text, [keys.log]))
        return await get_state(conn)
