"""SQL for the Merkle log: sequencing, entries, tiles and the integration/publication state.

Functions take a connection; the caller owns the transaction (Tessera's three stages:
sequence in the caller's transaction, integrate in the background, publish).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from fedserver.repo.session_state import keeps_session_state
from rewards.merkle import HashReader, Plan, TreeError, read_plan
from rewards.tiles import TILE_WIDTH, TileID, tile_hash_reader, tiles_for_nodes

LOG_CHANNEL = "rewards_log"
LOG_LEADER_LOCK = 0x7265_7761_7264_6C67  # "rewardlg": one process integrates and publishes at a time


async def take_leader_lock(conn: asyncpg.Connection) -> bool:
    """Try to become the log's leader on this session (the lock dies with the connection)."""
    keeps_session_state(conn)  # the pool releases the lock too, whatever happens to the caller
    return await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOG_LEADER_LOCK)


async def release_leader_lock(conn: asyncpg.Connection) -> None:
    """Stop leading."""
    await conn.execute("SELECT pg_advisory_unlock($1)", LOG_LEADER_LOCK)


async def append_entries(conn: asyncpg.Connection, leaves: Sequence[bytes]) -> int:
    """Sequence leaves in the caller's transaction; returns the index of the first.

    The UPDATE takes the row lock on rewards_log_seq and keeps it until the caller
    commits or rolls back. So indices are handed out one transaction at a time, in
    commit order: a rollback undoes the increment (its indices are reused by the next
    transaction, never left as a gap), and a committed index is never handed out
    again. Call it last in the transaction: the lock serialises appenders.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("append_entries must run inside the caller's transaction")
    first = await conn.fetchval(
        "UPDATE rewards_log_seq SET next_index = next_index + $1 RETURNING next_index - $1", len(leaves)
    )
    records = [(first + i, leaf) for i, leaf in enumerate(leaves)]
    if len(records) > 8:
        await conn.copy_records_to_table("rewards_log_entries", records=records, columns=["idx", "leaf"])
    else:
        await conn.executemany("INSERT INTO rewards_log_entries (idx, leaf) VALUES ($1, $2)", records)
    await conn.execute("SELECT pg_notify($1, '')", LOG_CHANNEL)
    return first


async def lock_sequence(conn: asyncpg.Connection) -> int:
    """Hold the sequencing lock until the caller commits; returns the next index.

    Statements after it see every committed entry, and no entry is appended before the
    caller's own: a mint is decided over exactly the entries that precede it in the log.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("lock_sequence must run inside the caller's transaction")
    return await conn.fetchval("SELECT next_index FROM rewards_log_seq FOR UPDATE")


async def append_entry(conn: asyncpg.Connection, leaf: bytes) -> int:
    """Sequence one leaf in the caller's transaction and return its index."""
    return await append_entries(conn, [leaf])


async def get_entries(conn: asyncpg.Connection, begin: int, end: int) -> list[bytes]:
    """Leaves [begin, end) in index order (fewer if not all exist)."""
    rows = await conn.fetch(
        "SELECT leaf FROM rewards_log_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx", begin, end
    )
    return [bytes(row["leaf"]) for row in rows]


async def get_entries_from(conn: asyncpg.Connection, begin: int, limit: int) -> list[tuple[int, bytes]]:
    """Up to `limit` (index, leaf) pairs from `begin`, in order."""
    rows = await conn.fetch(
        "SELECT idx, leaf FROM rewards_log_entries WHERE idx >= $1 ORDER BY idx LIMIT $2", begin, limit
    )
    return [(row["idx"], bytes(row["leaf"])) for row in rows]


async def sequenced_size(conn: asyncpg.Connection) -> int:
    """Number of committed sequenced entries."""
    return await conn.fetchval("SELECT next_index FROM rewards_log_seq")


# Tiles


async def read_tiles(conn: asyncpg.Connection, tiles: Sequence[TileID]) -> list[bytes]:
    """Stored bytes of each tile (possibly wider than asked); TreeError if one is missing or short."""
    if not tiles:
        return []
    rows = await conn.fetch(
        """SELECT t.level, t.idx, t.hashes FROM rewards_log_tiles t
           JOIN unnest($1::smallint[], $2::bigint[]) AS want(level, idx)
             ON t.level = want.level AND t.idx = want.idx""",
        [t.level for t in tiles], [t.index for t in tiles],
    )
    found = {(row["level"], row["idx"]): bytes(row["hashes"]) for row in rows}
    out = []
    for tile in tiles:
        data = found.get((tile.level, tile.index), b"")
        if len(data) < tile.width * 32:
            raise TreeError(f"tile {tile.path()} is not stored (have {len(data) // 32} hashes)")
        out.append(data)
    return out


async def write_tiles(conn: asyncpg.Connection, tiles: Sequence[tuple[TileID, bytes]]) -> None:
    """Store tiles; a stored tile is only ever replaced by a wider one."""
    await conn.executemany(
        """INSERT INTO rewards_log_tiles (level, idx, width, hashes) VALUES ($1, $2, $3, $4)
           ON CONFLICT (level, idx) DO UPDATE SET width = EXCLUDED.width, hashes = EXCLUDED.hashes
           WHERE rewards_log_tiles.width < EXCLUDED.width""",
        [(t.level, t.index, t.width, data) for t, data in tiles],
    )


async def plan_hashes(conn: asyncpg.Connection, plan: Plan, size: int) -> list[bytes]:
    """Evaluate a merkle proof plan for a tree of `size` from the stored tiles (one query)."""
    nodes = [node for element in plan for node in element]
    tiles = tiles_for_nodes(nodes, size)
    contents = dict(zip(tiles, await read_tiles(conn, tiles)))
    return read_plan(plan, _dict_tile_reader(size, contents))


def _dict_tile_reader(size: int, contents: dict[TileID, bytes]) -> HashReader:
    return tile_hash_reader(size, lambda wanted: [contents[t] for t in wanted])


async def read_tile_for_serving(conn: asyncpg.Connection, tile: TileID) -> bytes | None:
    """The first `width` hashes of a stored tile, or None."""
    data = await conn.fetchval("SELECT hashes FROM rewards_log_tiles WHERE level = $1 AND idx = $2",
                               tile.level, tile.index)
    if data is None or len(data) < tile.width * 32:
        return None
    return bytes(data[: tile.width * 32])


async def read_bundle(conn: asyncpg.Connection, index: int, width: int) -> list[bytes]:
    """The entries of bundle `index` up to `width`."""
    begin = index * TILE_WIDTH
    return await get_entries(conn, begin, begin + width)


# State


@dataclass(frozen=True)
class LogState:
    """Integration and publication state of the log."""

    tree_size: int
    tree_root: bytes
    signed_size: int | None
    signed_checkpoint: bytes | None
    published_size: int | None
    published_checkpoint: bytes | None


def _state(row: asyncpg.Record) -> LogState:
    def b(value: object) -> bytes | None:
        return bytes(value) if value is not None else None  # type: ignore[arg-type]

    return LogState(row["tree_size"], bytes(row["tree_root"]), row["signed_size"], b(row["signed_checkpoint"]),
                    row["published_size"], b(row["published_checkpoint"]))


async def get_state(conn: asyncpg.Connection, *, for_update: bool = False) -> LogState:
    """The current state row (locked when for_update, inside a transaction)."""
    row = await conn.fetchrow(
        "SELECT * FROM rewards_log_state" + (" FOR UPDATE" if for_update else "")
    )
    return _state(row)


async def set_tree(conn: asyncpg.Connection, old_size: int, size: int, root: bytes) -> None:
    """Advance the integrated tree (compare-and-swap on the old size)."""
    status = await conn.execute(
        "UPDATE rewards_log_state SET tree_size = $2, tree_root = $3, updated_at = now() WHERE tree_size = $1",
        old_size, size, root,
    )
    if status != "UPDATE 1":
        raise TreeError(f"tree size moved away from {old_size} during integration")


async def set_signed(conn: asyncpg.Connection, size: int, checkpoint: bytes) -> None:
    """Record a checkpoint signed by the log key (never smaller than the previous one)."""
    status = await conn.execute(
        """UPDATE rewards_log_state SET signed_size = $1, signed_checkpoint = $2, updated_at = now()
           WHERE $1 <= tree_size AND (signed_size IS NULL OR signed_size <= $1)""",
        size, checkpoint,
    )
    if status != "UPDATE 1":
        raise TreeError(f"refusing to sign size {size}: behind the last signed checkpoint or the tree")


async def set_published(conn: asyncpg.Connection, size: int, checkpoint: bytes) -> bool:
    """Publish a cosigned checkpoint unless a larger one is already published."""
    status = await conn.execute(
        """UPDATE rewards_log_state SET published_size = $1, published_checkpoint = $2,
                  published_at = now(), updated_at = now()
           WHERE $1 <= signed_size AND (published_size IS NULL OR published_size <= $1)""",
        size, checkpoint,
    )
    return status == "UPDATE 1"
