"""C2SP tlog-tiles v0.1.0 arithmetic: tile paths, tile contents, proofs from tiles.

A tile at level L holds up to 256 consecutive Merkle hashes at tree level 8*L.
Storage supplies a *tile reader* (tile ids -> tile bytes, one batched call);
``tile_hash_reader`` turns it into a ``merkle.HashReader`` so any proof needs only
the O(log n) tiles containing its nodes. ``integrate`` appends a batch of leaves to
the right edge and returns the changed tiles and the new root in O(batch + log n).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from rewards.merkle import (
    HASH_SIZE,
    CompactRange,
    HashReader,
    Node,
    TreeError,
    perfect_root,
)

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
ENTRIES_LEVEL = -1
MAX_TILE_LEVEL = 63
MAX_ENTRY_SIZE = 0xFFFF


@dataclass(frozen=True, order=True)
class TileID:
    """A tile: level (ENTRIES_LEVEL for entry bundles), index and width (1..256)."""

    level: int
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if not ENTRIES_LEVEL <= self.level <= MAX_TILE_LEVEL:
            raise TreeError(f"tile level {self.level} out of range")
        if self.index < 0 or not 1 <= self.width <= TILE_WIDTH:
            raise TreeError(f"bad tile index {self.index} or width {self.width}")

    @property
    def is_full(self) -> bool:
        """True if the tile holds all 256 entries."""
        return self.width == TILE_WIDTH

    def path(self) -> str:
        """Return the tile's path under the log prefix, e.g. tile/0/x001/234.p/7."""
        level = "entries" if self.level == ENTRIES_LEVEL else str(self.level)
        suffix = "" if self.is_full else f".p/{self.width}"
        return f"tile/{level}/{encode_tile_index(self.index)}{suffix}"


def encode_tile_index(n: int) -> str:
    """Encode a tile index in 3-digit groups: 1234067 -> x001/x234/067."""
    if n < 0:
        raise TreeError(f"negative tile index {n}")
    groups = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        groups.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(groups))


_TILE_PATH = re.compile(
    r"tile/(?P<level>entries|0|[1-9][0-9]?)/(?P<index>(?:x[0-9]{3}/)*[0-9]{3})"
    r"(?:\.p/(?P<width>[1-9][0-9]{0,2}))?"
)


def parse_tile_path(path: str) -> TileID:
    """Parse tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>] into a TileID."""
    m = _TILE_PATH.fullmatch(path)
    if not m:
        raise TreeError(f"not a tile path: {path!r}")
    groups = m["index"].replace("x", "").split("/")
    if len(groups) > 1 and groups[0] == "000":
        raise TreeError(f"tile index has a leading zero group: {path!r}")
    level = ENTRIES_LEVEL if m["level"] == "entries" else int(m["level"])
    width = int(m["width"]) if m["width"] else TILE_WIDTH
    if m["width"] and width >= TILE_WIDTH:
        raise TreeError(f"partial tile width must be 1..255: {path!r}")
    return TileID(level, int("".join(groups)), width)


def level_count(level: int, size: int) -> int:
    """Number of complete tree-level 8*level hashes in a tree of `size` leaves."""
    return size >> (TILE_HEIGHT * max(level, 0))


def tile_width(level: int, index: int, size: int) -> int:
    """Width of tile (level, index) in a tree of `size` leaves (0 if it does not exist)."""
    count = level_count(level, size)
    return max(0, min(TILE_WIDTH, count - index * TILE_WIDTH))


def tile_at(level: int, index: int, size: int) -> TileID:
    """Return the TileID (with its width) of tile (level, index) in a tree of `size`."""
    width = tile_width(level, index, size)
    if not width:
        raise TreeError(f"tile {level}/{index} is empty at size {size}")
    return TileID(level, index, width)


def partial_tiles(size: int) -> list[TileID]:
    """Return the partial tiles (one per level, when non-empty) of a tree of `size`."""
    out, level = [], 0
    while level_count(level, size):
        width = level_count(level, size) % TILE_WIDTH
        if width:
            out.append(TileID(level, level_count(level, size) // TILE_WIDTH, width))
        level += 1
    return out


def tile_for_node(node: Node, size: int) -> tuple[TileID, int, int]:
    """Return the tile holding a node's hashes and the [start, end) hash slots within it."""
    level = node.level // TILE_HEIGHT
    shift = node.level - level * TILE_HEIGHT
    first = node.index << shift
    start = first % TILE_WIDTH
    tile = tile_at(level, first // TILE_WIDTH, size)
    end = start + (1 << shift)
    if node.end > size or end > tile.width:
        raise TreeError(f"{node} is not complete in a tree of size {size}")
    return tile, start, end


def tiles_for_nodes(nodes: Sequence[Node], size: int) -> list[TileID]:
    """Return the distinct tiles needed to compute the given nodes, sorted."""
    return sorted({tile_for_node(node, size)[0] for node in nodes})


TileReader = Callable[[Sequence[TileID]], Sequence[bytes]]
"""Given tiles, returns their contents. A stored tile may be wider than asked."""


def tile_hash_reader(size: int, read_tiles: TileReader) -> HashReader:
    """Adapt a tile reader into a merkle.HashReader for a tree of `size` leaves."""

    def read(nodes: Sequence[Node]) -> list[bytes]:
        tiles = tiles_for_nodes(nodes, size)
        contents = dict(zip(tiles, _checked_tiles(tiles, read_tiles(tiles)), strict=True))
        return [_node_from_tile(node, size, contents) for node in nodes]

    return read


def _checked_tiles(tiles: Sequence[TileID], data: Sequence[bytes]) -> list[bytes]:
    if len(data) != len(tiles):
        raise TreeError(f"tile reader returned {len(data)} tiles for {len(tiles)}")
    for tile, body in zip(tiles, data):
        if len(body) < tile.width * HASH_SIZE or len(body) % HASH_SIZE:
            raise TreeError(f"tile {tile.path()} has {len(body)} bytes")
    return list(data)


def _node_from_tile(node: Node, size: int, contents: Mapping[TileID, bytes]) -> bytes:
    tile, start, end = tile_for_node(node, size)
    return perfect_root(split_hashes(contents[tile][start * HASH_SIZE : end * HASH_SIZE]))


def split_hashes(data: bytes) -> list[bytes]:
    """Split concatenated 32-byte hashes."""
    if len(data) % HASH_SIZE:
        raise TreeError(f"{len(data)} bytes is not a whole number of hashes")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def tile_nodes(tile: TileID) -> list[Node]:
    """Return the tree nodes whose hashes make up a tile (level >= 0)."""
    if tile.level == ENTRIES_LEVEL:
        raise TreeError("entry bundles hold entries, not hashes")
    first = tile.index * TILE_WIDTH
    return [Node(tile.level * TILE_HEIGHT, first + i) for i in range(tile.width)]


def tile_contents(tile: TileID, reader: HashReader) -> bytes:
    """Compute a tile's bytes from any hash reader (e.g. merkle.leaves_reader)."""
    return b"".join(reader(tile_nodes(tile)))


# Integration: append a batch at the right edge, emit changed tiles.


@dataclass(frozen=True)
class Integration:
    """Result of appending a batch: new right edge, changed tiles, new root."""

    edge: CompactRange
    tiles: tuple[tuple[TileID, bytes], ...]
    root: bytes

    @property
    def size(self) -> int:
        """New tree size."""
        return self.edge.size


def integrate(
    edge: CompactRange, partials: Mapping[int, bytes], leaf_hashes: Sequence[bytes]
) -> Integration:
    """Append leaf hashes to a tree given its right edge and its partial tiles.

    partials maps tile level -> bytes of the old partial tile at that level (as named
    by partial_tiles(edge.size)); levels whose partial tile is empty may be omitted.
    Every tile that gained hashes is returned, full or partial, in level order.
    """
    new_edge, recorded = edge.extend_recording(leaf_hashes, stride=TILE_HEIGHT)
    tiles: list[tuple[TileID, bytes]] = []
    for level in sorted(recorded):
        old = _old_partial(level, edge.size, partials)
        tiles.extend(_chunk_level(level, edge.size, old + b"".join(recorded[level])))
    return Integration(new_edge, tuple(tiles), new_edge.root())


def _old_partial(level: int, size: int, partials: Mapping[int, bytes]) -> bytes:
    width = level_count(level, size) % TILE_WIDTH
    data = partials.get(level, b"")[: width * HASH_SIZE]
    if len(data) != width * HASH_SIZE:
        raise TreeError(f"need {width} hashes of the level {level} partial tile")
    return data


def _chunk_level(level: int, old_size: int, data: bytes) -> list[tuple[TileID, bytes]]:
    index = level_count(level, old_size) // TILE_WIDTH
    step = TILE_WIDTH * HASH_SIZE
    out = []
    for offset in range(0, len(data), step):
        chunk = data[offset : offset + step]
        out.append((TileID(level, index, len(chunk) // HASH_SIZE), chunk))
        index += 1
    return out


# Entry bundles: big-endian uint16 length-prefixed entries.


def encode_entry_bundle(entries: Sequence[bytes]) -> bytes:
    """Encode entries as an entry bundle (each entry at most 65535 bytes)."""
    parts = []
    for entry in entries:
        if len(entry) > MAX_ENTRY_SIZE:
            raise TreeError(f"entry of {len(entry)} bytes exceeds {MAX_ENTRY_SIZE}")
        parts.append(len(entry).to_bytes(2, "big") + entry)
    return b"".join(parts)


def decode_entry_bundle(data: bytes) -> list[bytes]:
    """Decode an entry bundle into its entries."""
    entries, pos = [], 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise TreeError("truncated entry length")
        n = int.from_bytes(data[pos : pos + 2], "big")
        if pos + 2 + n > len(data):
            raise TreeError("truncated entry")
        entries.append(data[pos + 2 : pos + 2 + n])
        pos += 2 + n
    if len(entries) > TILE_WIDTH:
        raise TreeError(f"bundle holds {len(entries)} entries, more than {TILE_WIDTH}")
    return entries
