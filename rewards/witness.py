"""The tlog-witness v1.0.0 add-checkpoint service, for the member logs of our policy.

Status codes as the spec: 404 unknown origin, 403 no valid trusted log signature,
400 malformed or old > new, 409 (body: our size, text/x.tlog.size) when `old` is
not our size or when the sizes are equal but the roots differ, 422 bad consistency
proof or bad empty-tree root, 200 with the cosignature line. The record is replaced
by compare-and-swap on (size, root) before we reply, so of two concurrent requests
from the same old size exactly one succeeds. Signed requests we refuse for a
reason that may show misbehaviour (422, equal sizes with different roots) are kept
in ``rewards_evidence``; a same-size fork also raises an alert.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import asyncpg

from rewards.checkpoint import (
    TLOG_SIZE_CONTENT_TYPE,
    AddCheckpointRequest,
    Checkpoint,
    CheckpointError,
    build_tlog_size,
    parse_add_checkpoint,
    parse_checkpoint,
    peek_checkpoint,
)
from rewards.keys import RewardKeys
from rewards.merkle import EMPTY_ROOT, verify_consistency
from rewards.note import (
    NoteError,
    VerifiedNote,
    parse_note,
    verify_note,
    with_signatures,
)
from rewards.policy import Policy
from rewards.store import (
    WitnessState,
    get_cosigned_by_origin_hash,
    get_witness_state,
    insert_alert,
    insert_evidence,
    swap_witness_state,
)

log = logging.getLogger("rewards.witness")

MAX_REQUEST_BYTES = 64 * 1024


@dataclass(frozen=True)
class WitnessReply:
    """What to answer: status, body and content type."""

    status: int
    body: bytes
    content_type: str = "text/plain"

    @classmethod
    def error(cls, status: int, message: str) -> WitnessReply:
        """A plain-text error reply."""
        return cls(status, (message + "\n").encode("utf-8"))

    @classmethod
    def conflict(cls, size: int) -> WitnessReply:
        """409 with our stored size."""
        return cls(409, build_tlog_size(size).encode("ascii"), TLOG_SIZE_CONTENT_TYPE)


@dataclass(frozen=True)
class _Request:
    req: AddCheckpointRequest
    checkpoint: Checkpoint
    note: VerifiedNote


def _open(body: bytes, policy: Policy, keys: RewardKeys) -> _Request | WitnessReply:
    """Parse and authenticate a request; a WitnessReply means refuse."""
    if len(body) > MAX_REQUEST_BYTES:
        return WitnessReply.error(400, "request too large")
    try:
        req = parse_add_checkpoint(body)
        origin = peek_checkpoint(req.checkpoint).origin
    except (CheckpointError, NoteError) as exc:
        return WitnessReply.error(400, f"malformed request: {exc}")
    logs = policy.log_verifiers(origin)
    if not logs or origin == keys.origin:
        return WitnessReply.error(404, f"unknown log origin {origin!r}")
    try:
        note = verify_note(req.checkpoint, logs)
        checkpoint = parse_checkpoint(note.text)
    except NoteError as exc:
        return WitnessReply.error(403, f"no valid signature by a trusted key of {origin}: {exc}")
    if req.old_size > checkpoint.size:
        return WitnessReply.error(400, f"old size {req.old_size} is larger than the checkpoint size {checkpoint.size}")
    return _Request(req, checkpoint, note)


def _judge(request: _Request, state: WitnessState | None) -> tuple[WitnessReply | None, str | None]:
    """Decide from our record: (refusal or None, evidence kind or None)."""
    cp, req = request.checkpoint, request.req
    size, root = (state.size, state.root) if state else (0, EMPTY_ROOT)
    if state and cp.size == size and cp.root != root:
        return WitnessReply.conflict(size), "fork"
    if req.old_size != size:
        return WitnessReply.conflict(size), None
    if cp.size == 0 and cp.root != EMPTY_ROOT:
        return WitnessReply.error(422, "a tree of size 0 must have the empty root"), "bad-empty-root"
    if req.old_size == 0 and req.proof:
        return WitnessReply.error(422, "the consistency proof must be empty when old is 0"), "bad-proof"
    if not verify_consistency(size, cp.size, root, cp.root, list(req.proof)):
        return WitnessReply.error(422, f"consistency proof from {size} to {cp.size} does not verify"), "bad-proof"
    return None, None


async def add_checkpoint(pool: asyncpg.Pool, policy: Policy, keys: RewardKeys, body: bytes,
                         now: int) -> WitnessReply:
    """Handle one add-checkpoint request end to end."""
    opened = _open(body, policy, keys)
    if isinstance(opened, WitnessReply):
        return opened
    origin = opened.checkpoint.origin
    async with pool.acquire() as conn:
        state = await get_witness_state(conn, origin)
        refusal, evidence = _judge(opened, state)
        if refusal is not None:
            if evidence is not None:
                await _keep_evidence(conn, origin, evidence, refusal, body, state)
            return refusal
        new = WitnessState(opened.checkpoint.size, opened.checkpoint.root, opened.req.checkpoint)
        if not await swap_witness_state(conn, origin, state, new):
            current = await get_witness_state(conn, origin)
            return WitnessReply.conflict(current.size if current else 0)
    line = keys.witness.cosign(opened.note.text, now).line()
    return WitnessReply(200, line.encode("utf-8"))


async def _keep_evidence(conn: asyncpg.Connection, origin: str, kind: str, refusal: WitnessReply, body: bytes,
                         state: WitnessState | None) -> None:
    reason = refusal.body.decode("utf-8", "replace").strip()
    if kind == "fork":
        reason = f"two checkpoints of size {state.size if state else 0} with different roots"
        await insert_alert(conn, origin, "fork", f"{origin} signed {reason}; evidence kept")
        log.error("log %s forked: %s", origin, reason)
    await insert_evidence(conn, origin, kind, reason, body, state.checkpoint if state else None)


def origin_hash(origin: str) -> str:
    """Hex SHA-256 of an origin: the monitoring path element."""
    return hashlib.sha256(origin.encode("utf-8")).hexdigest()


async def monitored_checkpoint(conn: asyncpg.Connection, keys: RewardKeys, hex_hash: str) -> bytes | None:
    """The latest checkpoint we cosigned for the origin with this hash, with our cosignature."""
    found = await get_cosigned_by_origin_hash(conn, hex_hash.lower())
    if found is None:
        return None
    checkpoint, at = found
    note = parse_note(checkpoint)
    return with_signatures(note, [keys.witness.cosign(note.text, at)]).encode()
