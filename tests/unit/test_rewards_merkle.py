"""RFC 6962/9162 Merkle hashing, proofs and C2SP tlog-tiles, against a naive reference."""

from __future__ import annotations

import hashlib
import random
from functools import lru_cache

import pytest

from rewards.merkle import (
    EMPTY_ROOT,
    CompactRange,
    Node,
    TreeError,
    compact_range_from_reader,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    leaves_reader,
    node_hash,
    range_nodes,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    tree_root,
    verify_consistency,
    verify_inclusion,
)
from rewards.tiles import (
    ENTRIES_LEVEL,
    TileID,
    decode_entry_bundle,
    encode_entry_bundle,
    encode_tile_index,
    integrate,
    parse_tile_path,
    partial_tiles,
    tile_contents,
    tile_hash_reader,
    tiles_for_nodes,
)

N = 100_000
LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(N)]


def _build_levels(leaves: list[bytes]) -> list[list[bytes]]:
    levels = [leaves]
    while len(levels[-1]) > 1:
        row = levels[-1]
        levels.append([node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)])
    return levels


LEVELS = _build_levels(LEAVES)


def fast_reader(nodes):
    """Precomputed perfect-subtree hashes of LEAVES."""
    return [LEVELS[n.level][n.index] for n in nodes]


# Naive reference: RFC 6962 §2.1 MTH, PATH and PROOF, written recursively.


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@lru_cache(maxsize=None)
def mth(lo: int, hi: int) -> bytes:
    if hi == lo:
        return hashlib.sha256(b"").digest()
    if hi - lo == 1:
        return LEAVES[lo]
    k = _k(hi - lo)
    return node_hash(mth(lo, lo + k), mth(lo + k, hi))


def naive_path(m: int, lo: int, hi: int) -> list[bytes]:
    if hi - lo == 1:
        return []
    k = _k(hi - lo)
    if m < k:
        return naive_path(m, lo, lo + k) + [mth(lo + k, hi)]
    return naive_path(m - k, lo + k, hi) + [mth(lo, lo + k)]


def naive_subproof(m: int, lo: int, hi: int, b: bool) -> list[bytes]:
    n = hi - lo
    if m == n:
        return [] if b else [mth(lo, hi)]
    k = _k(n)
    if m <= k:
        return naive_subproof(m, lo, lo + k, b) + [mth(lo + k, hi)]
    return naive_subproof(m - k, lo + k, hi, False) + [mth(lo, lo + k)]


def naive_proof(m: int, n: int) -> list[bytes]:
    return naive_subproof(m, 0, n, True)


def flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


# Known answers from the Certificate Transparency test data (8 leaves).

CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_hashing_uses_rfc6962_domain_separation():
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    assert tree_root(0, fast_reader) == EMPTY_ROOT == CompactRange().root()


def test_roots_match_certificate_transparency_vectors():
    hashes = [leaf_hash(x) for x in CT_LEAVES]
    for size, want in enumerate(CT_ROOTS, start=1):
        assert root_from_leaf_hashes(hashes[:size]).hex() == want
        assert tree_root(size, leaves_reader(hashes)).hex() == want


def test_proofs_match_certificate_transparency_vectors():
    reader = leaves_reader([leaf_hash(x) for x in CT_LEAVES])
    path_0_8 = [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]
    assert [h.hex() for h in inclusion_proof(0, 8, reader)] == path_0_8
    assert [h.hex() for h in consistency_proof(1, 8, reader)] == path_0_8
    assert [h.hex() for h in consistency_proof(6, 8, reader)] == [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]
    assert [h.hex() for h in consistency_proof(2, 5, reader)] == [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]


def test_range_nodes_cover_range_with_aligned_perfect_subtrees():
    assert range_nodes(0, 13) == [Node(3, 0), Node(2, 2), Node(0, 12)]
    assert range_nodes(6, 13) == [Node(1, 3), Node(2, 2), Node(0, 12)]
    assert range_nodes(5, 5) == []
    with pytest.raises(TreeError):
        range_nodes(3, 2)


def test_inclusion_proofs_for_every_index_of_every_size_up_to_300():
    for size in range(1, 301):
        root = mth(0, size)
        assert tree_root(size, fast_reader) == root
        for index in range(size):
            proof = inclusion_proof(index, size, fast_reader)
            assert proof == naive_path(index, 0, size)
            assert verify_inclusion(index, size, LEAVES[index], proof, root)


def test_consistency_proofs_for_every_old_size_of_every_size_up_to_300():
    for size in range(1, 301):
        root = mth(0, size)
        for old in range(1, size + 1):
            proof = consistency_proof(old, size, fast_reader)
            assert proof == naive_proof(old, size)
            assert verify_consistency(old, size, mth(0, old), root, proof)


def test_random_proofs_in_trees_up_to_100k():
    rng = random.Random(6962)
    for _ in range(300):
        size = rng.randint(1, N)
        index = rng.randrange(size)
        proof = inclusion_proof(index, size, fast_reader)
        assert proof == naive_path(index, 0, size)
        assert verify_inclusion(index, size, LEAVES[index], proof, mth(0, size))
    for _ in range(300):
        old, new = sorted((rng.randint(1, N), rng.randint(1, N)))
        proof = consistency_proof(old, new, fast_reader)
        assert proof == naive_proof(old, new)
        assert verify_consistency(old, new, mth(0, old), mth(0, new), proof)


def _inclusion_tampers(index, size, proof):
    for i in range(len(proof)):
        yield index, size, LEAVES[index], proof[:i] + [flip(proof[i])] + proof[i + 1 :]
    if proof:
        yield index, size, LEAVES[index], proof[:-1]
    yield index, size, LEAVES[index], proof + [proof[0] if proof else LEAVES[0]]
    yield index, size, flip(LEAVES[index]), proof
    if size > 1:
        yield (index + 1) % size, size, LEAVES[index], proof


def test_tampered_inclusion_proofs_fail():
    rng = random.Random(1)
    cases = [(i, s) for s in range(1, 40) for i in range(s)]
    cases += [(rng.randrange(s), s) for s in (rng.randint(40, N) for _ in range(50))]
    for index, size in cases:
        root = mth(0, size)
        proof = inclusion_proof(index, size, fast_reader)
        for args in _inclusion_tampers(index, size, proof):
            assert not verify_inclusion(*args, root), (index, size, args[:2])
        assert not verify_inclusion(index, size, LEAVES[index], proof, flip(root))


def _consistency_tampers(old, new, proof):
    o, n = mth(0, old), mth(0, new)
    for i in range(len(proof)):
        yield old, new, o, n, proof[:i] + [flip(proof[i])] + proof[i + 1 :]
    if proof:
        yield old, new, o, n, proof[:-1]
    yield old, new, o, n, proof + [LEAVES[0]]
    yield old, new, flip(o), n, proof
    yield old, new, o, flip(n), proof
    if old > 1:
        yield old - 1, new, mth(0, old - 1), n, proof
    if new > old + 1:
        yield old, new - 1, o, mth(0, new - 1), proof


def test_tampered_consistency_proofs_fail():
    rng = random.Random(2)
    cases = [(m, n) for n in range(2, 40) for m in range(1, n)]
    cases += [tuple(sorted(rng.sample(range(1, N), 2))) for _ in range(50)]
    for old, new in cases:
        proof = consistency_proof(old, new, fast_reader)
        for args in _consistency_tampers(old, new, proof):
            assert not verify_consistency(*args), (old, new, args[:2])


def test_consistency_edge_cases_follow_tlog_witness():
    a, b = mth(0, 5), mth(0, 9)
    assert verify_consistency(0, 9, EMPTY_ROOT, b, [])
    assert not verify_consistency(0, 9, EMPTY_ROOT, b, [a])
    assert verify_consistency(9, 9, b, b, [])
    assert not verify_consistency(9, 9, a, b, [])
    assert not verify_consistency(9, 9, b, b, [a])
    assert not verify_consistency(9, 5, b, a, consistency_proof(5, 9, fast_reader))
    assert not verify_consistency(5, 9, a, b, [])
    assert consistency_proof(0, 9, fast_reader) == []
    assert consistency_proof(9, 9, fast_reader) == []


def test_verifiers_return_false_on_garbage_instead_of_raising():
    root = mth(0, 4)
    assert not verify_inclusion(-1, 4, LEAVES[0], [], root)
    assert not verify_inclusion(4, 4, LEAVES[4], [], root)
    assert not verify_inclusion(0, 0, LEAVES[0], [], root)
    assert not verify_inclusion(0, 4, b"short", [], root)
    assert not verify_inclusion(0, 4, LEAVES[0], [b"short"], root)
    assert not verify_inclusion(0, 4, LEAVES[0], None, root)
    assert not verify_inclusion("0", 4, LEAVES[0], [], root)
    assert not verify_consistency(1, 4, LEAVES[0], root, [b"x"])
    assert not verify_consistency(-1, 4, LEAVES[0], root, [])
    assert not verify_consistency(1, 4, None, root, [])
    assert root_from_inclusion_proof(0, 1, LEAVES[0], []) == LEAVES[0]


def test_proof_generation_rejects_impossible_arguments():
    with pytest.raises(TreeError):
        inclusion_proof(5, 5, fast_reader)
    with pytest.raises(TreeError):
        consistency_proof(6, 5, fast_reader)
    with pytest.raises(TreeError):
        inclusion_proof(0, 5, lambda nodes: [])


def test_leaves_reader_matches_precomputed_reader():
    for size in (1, 2, 3, 5, 8, 13, 64, 100, 257):
        reader = leaves_reader(LEAVES[:size])
        assert tree_root(size, reader) == mth(0, size)
        for index in range(0, size, 7):
            assert inclusion_proof(index, size, reader) == naive_path(index, 0, size)


def test_compact_range_append_in_batches_tracks_root():
    rng = random.Random(3)
    edge, pos = CompactRange(), 0
    while pos < 5000:
        batch = LEAVES[pos : pos + rng.randint(1, 300)]
        edge = edge.extend(batch)
        pos += len(batch)
        assert edge.size == pos and edge.root() == mth(0, pos)
        assert edge.hashes == tuple(fast_reader(edge.nodes()))
    assert compact_range_from_reader(pos, fast_reader) == edge
    with pytest.raises(TreeError):
        CompactRange(3, (LEAVES[0],))


def test_extend_recording_emits_every_tile_level_hash_in_order():
    edge, recorded = CompactRange().extend_recording(LEAVES[:70_000], stride=8)
    assert recorded[0] == LEAVES[:70_000]
    assert recorded[1] == LEVELS[8][: 70_000 >> 8]
    assert recorded[2] == LEVELS[16][: 70_000 >> 16]
    assert set(recorded) == {0, 1, 2}


# tlog-tiles


def test_tile_index_encoding_uses_three_digit_groups():
    assert encode_tile_index(1234067) == "x001/x234/067"
    assert encode_tile_index(0) == "000"
    assert encode_tile_index(999) == "999"
    assert encode_tile_index(1000) == "x001/000"
    assert TileID(0, 1234067).path() == "tile/0/x001/x234/067"
    assert TileID(2, 5, 17).path() == "tile/2/005.p/17"
    assert TileID(ENTRIES_LEVEL, 1000, 3).path() == "tile/entries/x001/000.p/3"


def test_tile_paths_round_trip_and_reject_non_canonical_forms():
    for tile in (TileID(0, 1234067), TileID(63, 0, 1), TileID(ENTRIES_LEVEL, 7, 255)):
        assert parse_tile_path(tile.path()) == tile
    for bad in ("tile/0/1", "tile/00/001", "tile/0/x000/001", "tile/0/001.p/256",
                "tile/0/001.p/0", "tile/0/001.p/07", "tile/64/001", "tile/0/001/002",
                "tile/-1/001", "tiles/0/001"):
        with pytest.raises(TreeError):
            parse_tile_path(bad)


def test_partial_tiles_match_the_spec_examples():
    assert partial_tiles(70_000) == [TileID(0, 273, 112), TileID(1, 1, 17), TileID(2, 0, 1)]
    assert partial_tiles(256) == [TileID(1, 0, 1)]
    assert partial_tiles(0) == []


def _integrate_all(total: int, seed: int):
    """Build a tile store by integrating random batches; check each batch's root."""
    rng = random.Random(seed)
    store: dict[tuple[int, int], bytes] = {}
    edge, pos = CompactRange(), 0
    while pos < total:
        batch = LEAVES[pos : min(total, pos + rng.choice((1, 7, 255, 256, 700, 3000)))]
        partials = {t.level: store[t.level, t.index] for t in partial_tiles(edge.size)}
        result = integrate(edge, partials, batch)
        for tile, data in result.tiles:
            assert len(data) == 32 * tile.width
            store[tile.level, tile.index] = data
        edge, pos = result.edge, pos + len(batch)
        assert result.root == mth(0, pos) and result.size == pos
    return store


STORE_SIZE = 70_000


@pytest.fixture(scope="module")
def tile_store():
    return _integrate_all(STORE_SIZE, seed=4)


def _tile_reader(store, log=None):
    def read(tiles):
        if log is not None:
            log.append(list(tiles))
        return [store[t.level, t.index] for t in tiles]

    return read


def test_integrated_tiles_match_the_spec_definition(tile_store):
    for (level, index), data in tile_store.items():
        width = len(data) // 32
        span = 256**level
        want = b"".join(
            mth((index * 256 + i) * span, (index * 256 + i + 1) * span) for i in range(width)
        )
        assert data == want, (level, index)
        assert data == tile_contents(TileID(level, index, width), fast_reader)


def test_tile_based_proofs_equal_naive_proofs_with_few_tile_reads(tile_store):
    rng = random.Random(5)
    for _ in range(150):
        size = rng.randint(1, STORE_SIZE)
        reads: list[list[TileID]] = []
        reader = tile_hash_reader(size, _tile_reader(tile_store, reads))
        assert tree_root(size, reader) == mth(0, size)
        index = rng.randrange(size)
        assert inclusion_proof(index, size, reader) == naive_path(index, 0, size)
        old = rng.randint(1, size)
        assert consistency_proof(old, size, reader) == naive_proof(old, size)
        assert all(len(batch) <= 6 for batch in reads)  # 3 tile levels, <= 2 tiles each


def test_tiles_for_nodes_names_partial_tiles_by_tree_size():
    tiles = tiles_for_nodes(range_nodes(0, 70_000), 70_000)
    assert tiles == [TileID(0, 273, 112), TileID(1, 1, 17), TileID(2, 0, 1)]
    assert tiles_for_nodes([Node(8, 3), Node(9, 127)], 70_000) == [TileID(1, 0)]


def test_integrate_requires_the_old_partial_tiles():
    edge = CompactRange().extend(LEAVES[:300])
    with pytest.raises(TreeError):
        integrate(edge, {}, LEAVES[300:310])


def test_entry_bundles_round_trip():
    entries = [b"", b"a", b"x" * 65535]
    data = encode_entry_bundle(entries)
    assert data[:3] == b"\x00\x00\x00"
    assert decode_entry_bundle(data) == entries
    with pytest.raises(TreeError):
        decode_entry_bundle(data[:-1])
    with pytest.raises(TreeError):
        encode_entry_bundle([b"x" * 65536])


def test_integrator_resumes_from_stored_tiles(tile_store):
    read = _tile_reader(tile_store)
    for size in (1, 255, 256, 50_000, 65_536, 69_999):
        edge = compact_range_from_reader(size, tile_hash_reader(size, read))
        assert edge == CompactRange().extend(LEAVES[:size])
        partials = dict(zip((t.level for t in partial_tiles(size)), read(partial_tiles(size))))
        result = integrate(edge, partials, LEAVES[size : size + 500])
        assert result.root == mth(0, min(size + 500, N))
        for tile, data in result.tiles:
            if tile.index * 256 * 256**tile.level + tile.width * 256**tile.level <= STORE_SIZE:
                assert tile_store[tile.level, tile.index].startswith(data)
