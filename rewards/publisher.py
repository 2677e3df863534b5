"""Publication: collect cosignatures from the policy's witnesses, publish at quorum.

Each new signed checkpoint is submitted to every witness in the policy (except our
own: it never cosigns our log) in parallel with tlog-witness ``add-checkpoint``.
A 409 tells us the witness's size; we resend once with a consistency proof from
there. The checkpoint is published (served at /rewards/log/checkpoint) only when
the cosignatures satisfy the policy's quorum; with ``quorum none`` at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import aiohttp
import asyncpg

from rewards.checkpoint import (
    TLOG_SIZE_CONTENT_TYPE,
    AddCheckpointRequest,
    CheckpointError,
    build_add_checkpoint,
    parse_checkpoint,
    parse_tlog_size,
)
from rewards.context import RewardsContext, RewardsHttp
from rewards.logstore import LogState, plan_hashes, set_published
from rewards.merkle import consistency_plan
from rewards.note import NoteError, NoteSignature, parse_note, parse_signature_lines, verify_note, with_signatures
from rewards.policy import NONE, Policy, PolicyWitness, quorum_satisfied, verify_checkpoint
from rewards.store import insert_alert

log = logging.getLogger("rewards.publisher")

REFRESH_SECONDS = 600


class WitnessRefused(Exception):
    """A witness did not cosign; `status` is its HTTP status (None: unreachable)."""

    def __init__(self, message: str, status: int | None = None, size: int | None = None):
        super().__init__(message)
        self.status = status
        self.size = size


@dataclass
class Publisher:
    """Remembers each witness's size for our log between rounds (a 409 corrects it)."""

    ctx: RewardsContext
    sizes: dict[str, int] = field(default_factory=dict)
    cosigned: dict[str, NoteSignature] = field(default_factory=dict)
    cosigned_size: int | None = None
    published_at: float = 0.0

    def witnesses(self, policy: Policy) -> list[PolicyWitness]:
        """Witnesses we ask: every one with a URL except our own."""
        ours = self.ctx.keys.witness.public_key
        return [w for w in policy.witnesses if w.url and w.verifier.public_key != ours]

    async def publish(self, pool: asyncpg.Pool, session: RewardsHttp, state: LogState) -> bool:
        """Try to publish the latest signed checkpoint; True if it is published now."""
        if state.signed_checkpoint is None or state.signed_size is None:
            return False
        policy = self.ctx.policy()
        if state.published_size == state.signed_size:
            if time.monotonic() - self.published_at < REFRESH_SECONDS and _satisfies(state, policy):
                return True
            self.cosigned_size = None  # refresh, or the policy changed: collect fresh cosignatures
        if self.cosigned_size != state.signed_size:
            self.cosigned, self.cosigned_size = {}, state.signed_size
        if policy.quorum != NONE:
            await self._collect(pool, session, policy, state)
            if not quorum_satisfied(policy, self.cosigned):
                return False
        body = _with_cosignatures(state.signed_checkpoint, list(self.cosigned.values()))
        verify_checkpoint(body, policy)
        async with pool.acquire() as conn:
            done = await set_published(conn, state.signed_size, body)
        if done:
            self.published_at = time.monotonic()
        return done

    async def _collect(self, pool: asyncpg.Pool, session: RewardsHttp, policy: Policy,
                       state: LogState) -> None:
        missing = [w for w in self.witnesses(policy) if w.name not in self.cosigned]
        results = await asyncio.gather(*(self._cosign(pool, session, w, state) for w in missing),
                                       return_exceptions=True)
        for witness, result in zip(missing, results):
            if isinstance(result, NoteSignature):
                self.cosigned[witness.name] = result
            elif isinstance(result, WitnessRefused):
                await self._refused(pool, witness, result, state)
            else:
                log.error("witness %s: %r", witness.name, result)

    async def _cosign(self, pool: asyncpg.Pool, session: RewardsHttp, witness: PolicyWitness,
                      state: LogState) -> NoteSignature:
        size = state.signed_size or 0
        old = min(self.sizes.get(witness.name, 0), size)
        try:
            line = await self._submit(pool, session, witness, old, state)
        except WitnessRefused as exc:
            if exc.status != 409 or exc.size is None or exc.size == old or exc.size > size:
                raise
            line = await self._submit(pool, session, witness, exc.size, state)
        self.sizes[witness.name] = size
        return line

    async def _submit(self, pool: asyncpg.Pool, session: RewardsHttp, witness: PolicyWitness, old: int,
                      state: LogState) -> NoteSignature:
        size = state.signed_size or 0
        async with pool.acquire() as conn:
            proof = await plan_hashes(conn, consistency_plan(old, size), size)
        body = build_add_checkpoint(AddCheckpointRequest(old, tuple(proof), state.signed_checkpoint or b""))
        status, text, ctype = await _post(session, f"{witness.url}/add-checkpoint", body)
        if status == 200:
            return _cosignature(witness, text, state.signed_checkpoint or b"")
        size_seen = _parse_size(text) if status == 409 and ctype == TLOG_SIZE_CONTENT_TYPE else None
        raise WitnessRefused(f"HTTP {status}: {text[:200].decode('utf-8', 'replace')}", status, size_seen)

    async def _refused(self, pool: asyncpg.Pool, witness: PolicyWitness, exc: WitnessRefused,
                       state: LogState) -> None:
        size = state.signed_size or 0
        if exc.status == 409 and exc.size is not None and exc.size > size:
            message = f"witness {witness.name} has cosigned size {exc.size}, larger than our log ({size}): rollback?"
        elif exc.status == 422:
            message = f"witness {witness.name} refused our consistency proof: our log may have forked"
        else:
            log.warning("witness %s did not cosign: %s", witness.name, exc)
            return
        log.error(message)
        await insert_alert(pool, self.ctx.keys.origin, "witness-refused", message)


async def _post(session: RewardsHttp, url: str, body: bytes) -> tuple[int, bytes, str]:
    try:
        async with session.post(url, data=body, headers={"Content-Type": "text/plain; charset=utf-8"}) as response:
            return response.status, await response.read(), response.content_type
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise WitnessRefused(f"unreachable: {type(exc).__name__}: {exc}") from None


def _parse_size(body: bytes) -> int | None:
    try:
        return parse_tlog_size(body)
    except CheckpointError:
        return None


def _cosignature(witness: PolicyWitness, body: bytes, checkpoint: bytes) -> NoteSignature:
    """The witness's valid cosignature among the returned lines (unknown keys ignored)."""
    try:
        lines = parse_signature_lines(body.decode("utf-8"))
        note = parse_note(checkpoint)
        mine = [s for s in lines if (s.name, s.key_id) == (witness.verifier.name, witness.verifier.key_id)]
        if mine:
            verify_note(with_signatures(note, mine[:1]), [witness.verifier])
            parse_checkpoint(note.text)
            return mine[0]
    except (NoteError, UnicodeDecodeError) as exc:
        raise WitnessRefused(f"bad cosignature from {witness.name}: {exc}", 200) from None
    raise WitnessRefused(f"no cosignature by {witness.verifier.name} in the answer", 200)


def _satisfies(state: LogState, policy: Policy) -> bool:
    try:
        verify_checkpoint(state.published_checkpoint or b"", policy)
    except (NoteError, CheckpointError):
        return False
    return True


def _with_cosignatures(checkpoint: bytes, cosignatures: list[NoteSignature]) -> bytes:
    note = parse_note(checkpoint)
    return with_signatures(note, cosignatures).encode()
