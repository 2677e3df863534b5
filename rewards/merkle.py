"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and the compact right edge.

Pure functions only. Proofs are generated from a *hash reader*: a callable that
returns the stored hashes of perfect subtrees (``Node``s), so the same code serves
an in-memory list of leaves and a tile store in PostgreSQL (see ``rewards.tiles``).
Verification transcribes RFC 9162 §2.1.3.2 and §2.1.4.2 and never raises.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class TreeError(ValueError):
    """Raised for impossible tree arguments or inconsistent stored hashes."""


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 6962 leaf hash SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 interior hash SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


@dataclass(frozen=True, order=True)
class Node:
    """A perfect subtree: leaves [index * 2**level, (index + 1) * 2**level)."""

    level: int
    index: int

    @property
    def begin(self) -> int:
        """First leaf index covered by this subtree."""
        return self.index << self.level

    @property
    def end(self) -> int:
        """One past the last leaf index covered by this subtree."""
        return (self.index + 1) << self.level


HashReader = Callable[[Sequence[Node]], Sequence[bytes]]
"""Given perfect subtrees, returns their hashes in the same order."""


def split_point(n: int) -> int:
    """Return the largest power of two strictly less than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(begin: int, end: int) -> list[Node]:
    """Decompose leaves [begin, end) into maximal aligned perfect subtrees, left to right."""
    if begin < 0 or end < begin:
        raise TreeError(f"bad leaf range [{begin}, {end})")
    nodes = []
    while begin < end:
        level = (end - begin).bit_length() - 1
        if begin:
            level = min(level, (begin & -begin).bit_length() - 1)
        nodes.append(Node(level, begin >> level))
        begin += 1 << level
    return nodes


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """Combine the hashes of range_nodes(a, b) (a aligned) into MTH(D[a:b])."""
    if not hashes:
        raise TreeError("cannot fold an empty range")
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """Return the root of a perfect tree whose bottom row is hashes (length a power of 2)."""
    row = list(hashes)
    if not row or len(row) & (len(row) - 1):
        raise TreeError(f"{len(row)} is not a power of two")
    while len(row) > 1:
        row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row), 2)]
    return row[0]


# Proof plans: each proof element is MTH of an RFC subtree, i.e. a fold of perfect
# subtrees. Planning is separate from reading so storage can batch its reads.

Plan = list[list[Node]]


def root_plan(size: int) -> Plan:
    """Plan for the root hash of a tree of the given size (empty for size 0)."""
    return [range_nodes(0, size)] if size else []


def inclusion_plan(index: int, size: int) -> Plan:
    """Plan for the RFC 6962 PATH(index, D[0:size]), leaf sibling first."""
    if not 0 <= index < size:
        raise TreeError(f"leaf index {index} outside tree of size {size}")
    out: Plan = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index < lo + k:
            out.append(range_nodes(lo + k, hi))
            hi = lo + k
        else:
            out.append(range_nodes(lo, lo + k))
            lo += k
    return out[::-1]


def consistency_plan(old_size: int, new_size: int) -> Plan:
    """Plan for the RFC 6962 PROOF(old_size, D[0:new_size]); empty if old is 0 or equal."""
    if not 0 <= old_size <= new_size:
        raise TreeError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    out: Plan = []
    lo, hi, m, complete = 0, new_size, old_size, True
    while m != hi - lo:
        k = split_point(hi - lo)
        if m <= k:
            out.append(range_nodes(lo + k, hi))
            hi = lo + k
        else:
            out.append(range_nodes(lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        out.append(range_nodes(lo, hi))
    return out[::-1]


def read_plan(plan: Plan, reader: HashReader) -> list[bytes]:
    """Fetch every node of a plan with one reader call and fold each element."""
    flat = [node for element in plan for node in element]
    hashes = list(reader(flat)) if flat else []
    if len(hashes) != len(flat):
        raise TreeError(f"hash reader returned {len(hashes)} hashes for {len(flat)} nodes")
    for h in hashes:
        _check_hash(h)
    out, pos = [], 0
    for element in plan:
        out.append(fold_right(hashes[pos : pos + len(element)]))
        pos += len(element)
    return out


def tree_root(size: int, reader: HashReader) -> bytes:
    """Return MTH(D[0:size]) using stored subtree hashes."""
    return read_plan(root_plan(size), reader)[0] if size else EMPTY_ROOT


def inclusion_proof(index: int, size: int, reader: HashReader) -> list[bytes]:
    """Return the inclusion proof for leaf index in the tree of the given size."""
    return read_plan(inclusion_plan(index, size), reader)


def consistency_proof(old_size: int, new_size: int, reader: HashReader) -> list[bytes]:
    """Return the consistency proof between two tree sizes."""
    return read_plan(consistency_plan(old_size, new_size), reader)


def leaves_reader(leaf_hashes: Sequence[bytes]) -> HashReader:
    """Hash reader that recomputes each subtree from indexable leaf hashes (O(n) per proof)."""

    def read(nodes: Sequence[Node]) -> list[bytes]:
        out = []
        for node in nodes:
            if node.end > len(leaf_hashes):
                raise TreeError(f"{node} beyond {len(leaf_hashes)} leaves")
            out.append(perfect_root(leaf_hashes[node.begin : node.end]))
        return out

    return read


def root_from_leaf_hashes(leaf_hashes: Iterable[bytes]) -> bytes:
    """Return MTH of a whole list of leaf hashes in O(n)."""
    return CompactRange().extend(leaf_hashes).root()


# Compact range: the right edge of the tree, enough to append and to get the root.


@dataclass(frozen=True)
class CompactRange:
    """Hashes of range_nodes(0, size): the right edge of a tree of `size` leaves."""

    size: int = 0
    hashes: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if len(self.hashes) != self.size.bit_count():
            raise TreeError(f"size {self.size} needs {self.size.bit_count()} edge hashes")

    def nodes(self) -> list[Node]:
        """Return the perfect subtrees whose hashes this range holds."""
        return range_nodes(0, self.size)

    def root(self) -> bytes:
        """Return the tree root for this size."""
        return fold_right(self.hashes) if self.size else EMPTY_ROOT

    def extend(self, leaf_hashes: Iterable[bytes]) -> CompactRange:
        """Return the range after appending leaf hashes."""
        return self.extend_recording(leaf_hashes, stride=0)[0]

    def extend_recording(
        self, leaf_hashes: Iterable[bytes], stride: int
    ) -> tuple[CompactRange, dict[int, list[bytes]]]:
        """Append leaves; also return new hashes at levels multiple of stride, keyed level//stride.

        With stride 8 the result is exactly the new hashes of each tlog tile level,
        in index order (level 0 = the leaf hashes themselves). stride 0 records nothing.
        """
        stack, size = list(self.hashes), self.size
        recorded: dict[int, list[bytes]] = {}
        for leaf in leaf_hashes:
            _check_hash(leaf)
            stack.append(leaf)
            if stride:
                recorded.setdefault(0, []).append(leaf)
            size += 1
            level, s = 0, size
            while not s & 1:
                right = stack.pop()
                stack[-1] = node_hash(stack[-1], right)
                level, s = level + 1, s >> 1
                if stride and level % stride == 0:
                    recorded.setdefault(level // stride, []).append(stack[-1])
        return CompactRange(size, tuple(stack)), recorded


def compact_range_from_reader(size: int, reader: HashReader) -> CompactRange:
    """Load the right edge of a stored tree, e.g. when an integrator starts."""
    nodes = range_nodes(0, size)
    hashes = tuple(reader(nodes)) if nodes else ()
    return CompactRange(size, hashes)


def _check_hash(h: bytes) -> None:
    if not isinstance(h, bytes) or len(h) != HASH_SIZE:
        raise TreeError("hashes must be 32 bytes")


# Verification (RFC 9162). Returns False on any malformed input; never raises.


def _is_hash(h: object) -> bool:
    return isinstance(h, bytes) and len(h) == HASH_SIZE


def _is_size(n: object) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 0


def _valid_path(path: object) -> bool:
    return isinstance(path, (list, tuple)) and all(_is_hash(p) for p in path)


def _shift_until_odd(fn: int, sn: int) -> tuple[int, int]:
    while not fn & 1 and fn != 0:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def root_from_inclusion_proof(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes]
) -> bytes | None:
    """Return the root implied by an inclusion proof (RFC 9162 §2.1.3.2), or None."""
    if not (_is_size(index) and _is_size(size) and _is_hash(leaf) and _valid_path(proof)):
        return None
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _shift_until_odd(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """Check that leaf (a leaf hash) is at index in the tree with the given root."""
    computed = root_from_inclusion_proof(index, size, leaf, proof)
    return computed is not None and _is_hash(root) and computed == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Check a consistency proof (RFC 9162 §2.1.4.2, plus the tlog-witness edge cases)."""
    if not (_is_size(old_size) and _is_size(new_size) and _valid_path(proof)):
        return False
    if not (_is_hash(old_root) and _is_hash(new_root)) or old_size > new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    return _verify_consistency_rfc(old_size, new_size, old_root, new_root, list(proof))


def _verify_consistency_rfc(
    first: int, second: int, first_hash: bytes, second_hash: bytes, path: list[bytes]
) -> bool:
    if not path:
        return False
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            fn, sn = _shift_until_odd(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_hash and sr == second_hash and sn == 0
