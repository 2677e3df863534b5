"""The open ranking's service: choose the checkpoints, read and verify the logs up to them, apply the formula.

The formula itself is pure (rewards/ranking.py). Here: the live ranking takes the current
witnessed checkpoint of every log in the federation policy (a log that cannot be fetched or
verified is left out and not listed); a ranking `at` a saved answer uses exactly the listed
checkpoints, each proved consistent with the log's current witnessed checkpoint, and fails
if any of them cannot be reproduced. Either way every entry up to the checkpoint is fetched
from the log's tiles, must hash to the checkpoint's root, and must carry both signatures.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterable, Sequence

import asyncpg

from rewards.client import FetchError, LogClient
from rewards.context import RewardsContext, RewardsHttp
from rewards.expire import Expire
from rewards.merkle import leaf_hash, root_from_leaf_hashes
from rewards.mint import Mint
from rewards.note import Ed25519Verifier, b64encode
from rewards.policy import Policy
from rewards.ranking import LogHead, build_ranking, check_request, encode_ranking, parse_saved_ranking
from rewards.receipt import Receipt
from rewards.spend import Spend
from rewards.store import WitnessState
from rewards.verify import VerifyFailure, check_head, check_log_entry, witnessed

log = logging.getLogger("rewards.rankings")

CACHED_LOGS = 64  # verified logs kept in memory (one checkpoint per origin)


class RankingFailure(Exception):
    """A saved ranking could not be recomputed; the message says which log and why."""


class VerifiedReceipts:
    """Receipts verified at one checkpoint per origin, so an unchanged log is not fetched again."""

    def __init__(self) -> None:
        self._by_origin: dict[str, tuple[LogHead, tuple[Receipt, ...]]] = {}

    def get(self, head: LogHead) -> tuple[Receipt, ...] | None:
        """The receipts verified at exactly this checkpoint, if any."""
        found = self._by_origin.get(head.origin)
        return found[1] if found is not None and found[0] == head else None

    def put(self, head: LogHead, receipts: tuple[Receipt, ...]) -> None:
        """Remember the receipts of `head` (replacing an older checkpoint of the same log)."""
        if head.origin not in self._by_origin and len(self._by_origin) >= CACHED_LOGS:
            self._by_origin.pop(next(iter(self._by_origin)))
        self._by_origin[head.origin] = (head, receipts)


async def receipt_keys(ctx: RewardsContext, pool: asyncpg.Pool | asyncpg.Connection) -> dict[str, Ed25519Verifier]:
    """Receipt keys by domain: the pinned members' and ours."""
    keys = {domain: m.receipts for domain, m in (await ctx.members(pool, fresh=True)).items()}
    keys[ctx.keys.domain] = ctx.keys.receipts_verifier()
    return keys


def verify_log_entries(entries: Sequence[bytes], head: LogHead, keys: dict[str, Ed25519Verifier]
                       ) -> list[Receipt | Mint | Spend | Expire]:
    """Every entry of a log's first `head.size`, checked: they must hash to the root, each with its signatures."""
    if len(entries) != head.size:
        raise VerifyFailure(f"{len(entries)} entries fetched, the checkpoint has {head.size}", "unavailable")
    root = b64encode(root_from_leaf_hashes(leaf_hash(entry) for entry in entries))
    if root != head.root:
        raise VerifyFailure(f"entries hash to root {root}, the checkpoint says {head.root}", "rewrite")
    checked = []
    for index, leaf in enumerate(entries):
        try:
            checked.append(check_log_entry(leaf, keys))
        except VerifyFailure as exc:
            raise VerifyFailure(f"entry {index}: {exc}", "bad-receipt") from None
    return checked


def verify_entries(entries: Sequence[bytes], head: LogHead, keys: dict[str, Ed25519Verifier]) -> tuple[Receipt, ...]:
    """The receipts of a log's first `head.size` entries; they must hash to the root and carry both signatures.

    Mint and spend entries are checked (each with its own signatures) and left out: they rank nothing.
    """
    receipts: list[Receipt] = []
    seen: set[str] = set()
    for index, receipt in enumerate(verify_log_entries(entries, head, keys)):
        if isinstance(receipt, Mint | Spend | Expire):
            continue  # mints, spends and expiries move tokens: no signal for the ranking
        if receipt.id in seen:
            raise VerifyFailure(f"entry {index}: duplicate receipt id {receipt.id}", "bad-receipt")
        seen.add(receipt.id)
        receipts.append(receipt)
    return tuple(receipts)


async def read_log(session: RewardsHttp, url: str, head: LogHead, keys: dict[str, Ed25519Verifier]
                   ) -> tuple[Receipt, ...]:
    """Fetch a log's entries up to `head` from `url` and verify them (the signatures off the event loop)."""
    try:
        entries = await LogClient(session, url).entries(head.size)
    except FetchError as exc:
        raise VerifyFailure(f"cannot fetch entries: {exc}", "unavailable") from None
    return await asyncio.to_thread(verify_entries, entries, head, keys)


async def current_head(session: RewardsHttp, policy: Policy, url: str) -> LogHead:
    """The log's current checkpoint, signed by the log and cosigned to the policy's quorum."""
    _, head = await witnessed(LogClient(session, url), policy)
    cp = head.checkpoint
    return LogHead(cp.origin, cp.size, b64encode(cp.root), url)


async def confirm_head(session: RewardsHttp, policy: Policy, url: str, head: LogHead) -> None:
    """A listed checkpoint must be the log's witnessed one or consistent with it (a prefix of the same log)."""
    try:
        root = base64.b64decode(head.root, validate=True)
    except ValueError:
        raise VerifyFailure(f"root {head.root!r} is not base64") from None
    # The same check as monitoring: smaller than the listed size, or another root at that size, or no
    # consistency proof from the tiles, and the listed checkpoint is refused.
    await check_head(LogClient(session, url), policy, WitnessState(head.size, root, b""))


class Ranker:
    """Computes rankings for one process: one guarded HTTP session, verified logs cached by checkpoint."""

    def __init__(self, ctx: RewardsContext, pool: asyncpg.Pool | asyncpg.Connection, session: RewardsHttp):
        self.ctx, self.pool, self.session = ctx, pool, session
        self.cache = VerifiedReceipts()
        self._lock = asyncio.Lock()

    async def _receipts(self, url: str, head: LogHead, keys: dict[str, Ed25519Verifier]) -> tuple[Receipt, ...]:
        found = self.cache.get(head)
        if found is None:
            found = await read_log(self.session, url, head, keys)
            self.cache.put(head, found)
        return found

    async def _live_log(self, policy: Policy, url: str, keys: dict[str, Ed25519Verifier]
                        ) -> tuple[LogHead, tuple[Receipt, ...]] | None:
        try:
            head = await current_head(self.session, policy, url)
            return head, await self._receipts(url, head, keys)
        except VerifyFailure as exc:
            log.warning("ranking leaves out the log at %s: %s", url, exc)
            return None

    async def live(self, kind: str, window: str) -> bytes:
        """The ranking over the current witnessed checkpoint of every log in the policy, as canonical JSON."""
        check_request(kind, window)
        async with self._lock:  # one computation at a time: the next request finds the logs cached
            policy = self.ctx.policy()
            keys = await receipt_keys(self.ctx, self.pool)
            urls = sorted({entry.url for entry in policy.logs if entry.url})
            found = await asyncio.gather(*(self._live_log(policy, url, keys) for url in urls))
        used = [item for item in found if item is not None]
        return _encode((r for _, receipts in used for r in receipts), kind, window, [head for head, _ in used])

    async def at(self, saved: bytes) -> bytes:
        """Recompute a saved ranking from exactly the checkpoints it lists; RankingFailure if one cannot be."""
        try:
            kind, window, heads = parse_saved_ranking(saved)
        except ValueError as exc:
            raise RankingFailure(str(exc)) from None
        policy = self.ctx.policy()
        keys = await receipt_keys(self.ctx, self.pool)
        urls = {entry.verifier.name: entry.url for entry in policy.logs if entry.url}
        receipts: list[Receipt] = []
        for head in heads:
            url = urls.get(head.origin) or head.url
            try:
                await confirm_head(self.session, policy, url, head)
                receipts += await self._receipts(url, head, keys)
            except VerifyFailure as exc:
                raise RankingFailure(f"log {head.origin} at size {head.size}: {exc}") from None
        return _encode(receipts, kind, window, heads)


def _encode(receipts: Iterable[Receipt], kind: str, window: str, heads: list[LogHead]) -> bytes:
    return encode_ranking(build_ranking(receipts, kind, window, heads))
