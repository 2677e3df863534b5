"""Balances and minting over our own log: read an account's entries, fold them, append mints.

The arithmetic is pure (rewards/balance.py); here: which entries, at which log size, and
the transaction that appends a mint. A mint is decided while holding the log's sequencing
lock, over every committed entry about the account, and appended in the same transaction
with its (account, seq) index row: it is in the log exactly once, after exactly the entries
it was computed from, or not at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

import asyncpg

from fedserver.config import Settings
from rewards import spend_store
from rewards.balance import Balance, TokenPolicy, fold_balance, next_expire, next_mint, parse_entry
from rewards.balance_state import FoldState, entries_of_rows, policy_key
from rewards.context import RewardsContext, endorsement_policy, token_policy
from rewards.endorse import EndorsementPolicy
from rewards.expire import Expire, build_expire
from rewards.logstore import append_entry, get_state, lock_sequence
from rewards.mint import Mint, build_mint
from rewards.note import sign_note
from rewards.points import url_domain
from rewards.store import (
    accounts_behind,
    get_account_entries,
    get_account_rows,
    get_account_uri,
    get_balance_fold,
    insert_mint_index,
    list_mint_candidates,
    put_balance_fold,
    unpublished_points,
)

log = logging.getLogger("rewards.minting")

ABSORB_SLICE = 2_000  # rows the fold-saving worker absorbs between two turns of the event loop
SAVE_AFTER = 128  # entries past its saved fold after which an account's fold is saved again


class BalanceCache:
    """The running folds (rewards.balance_state.FoldState) of the accounts asked about lately, per database.

    A balance absorbs only the entries appended since it was last asked for, read from the log's
    index rows; an account asked for at an earlier time than before is folded from scratch. An
    account not in memory starts from its saved fold (table reward_balance_folds, if saved under
    the same policies over at most the entries asked for) and reads only the entries after it.
    A query never saves: the fold-saving worker (`FoldSaver`, through `save`) keeps the saved
    folds of busy accounts near the published log, off the request path. At most `max_entries`
    receipts' worth (FoldState.held) are kept in memory: the accounts asked about least recently
    are dropped.
    """

    def __init__(self, max_entries: int = 100_000):  # about 30 MB at most
        self.max_entries = max_entries
        # (database, account) -> (the fold, the log size it is over)
        self._states: OrderedDict[tuple[str, str], tuple[FoldState, int]] = OrderedDict()
        self._held = 0

    def clear(self) -> None:
        """Forget every fold kept in memory (what a restart does; the saved ones stay)."""
        self._states.clear()
        self._held = 0

    async def _restore(self, conn: asyncpg.Connection, account: str, size: int, tokens: TokenPolicy,
                       endorsement: EndorsementPolicy) -> tuple[FoldState, int]:
        saved = await get_balance_fold(conn, account, size, policy_key(tokens, endorsement))
        if saved is not None:
            try:
                state = FoldState.from_bytes(saved[1], tokens, endorsement)
            except ValueError:
                log.warning("saved balance fold of %s unreadable: folding it again", account, exc_info=True)
            else:
                if state.account == account:
                    return state, saved[0]
        return FoldState.start(account, tokens, endorsement), 0

    def _take(self, key: tuple[str, str]) -> tuple[FoldState, int] | None:
        found = self._states.pop(key, None)
        if found is not None:
            self._held -= found[0].held
        return found

    def _keep(self, key: tuple[str, str], state: FoldState, size: int) -> None:
        self._take(key)  # a concurrent query of the same account may have put its own fold back meanwhile
        self._states[key] = (state, size)
        self._held += state.held
        while self._held > self.max_entries and len(self._states) > 1:
            _, (dropped, _) = self._states.popitem(last=False)
            self._held -= dropped.held

    async def _current(self, conn: asyncpg.Connection, settings: Settings, account: str, size: int,
                       pause: bool = False) -> tuple[FoldState, bool]:
        """The account's fold over the log's first `size` entries, taken out of memory (or restored, or started),
        and whether it was in memory. With `pause`, it absorbs a slice at a time and lets other tasks run
        between slices (a busy account's history is tens of thousands of rows)."""
        tokens, endorsement = token_policy(settings), endorsement_policy(settings)
        found = self._take((settings.database.url, account))
        state, done = found if found is not None else (None, 0)
        if state is None or done > size or state.policy != tokens or state.endorsement != endorsement:
            state, done = await self._restore(conn, account, size, tokens, endorsement)
        if done < size:
            rows = await get_account_rows(conn, account, done, size)
            step = ABSORB_SLICE if pause else len(rows) or 1
            for begin in range(0, len(rows), step):
                state.absorb(entries_of_rows(rows[begin:begin + step]))
                if pause:
                    await asyncio.sleep(0)
        return state, found is not None

    async def balance(self, conn: asyncpg.Connection, settings: Settings, account: str, size: int,
                      as_of: int) -> tuple[Balance, int]:
        """The balance at `as_of` over the log's first `size` entries, and how many receipts credit the account."""
        state, _ = await self._current(conn, settings, account, size)
        found = state.balance(as_of)
        if found is None:  # an earlier time than one answered: fold from scratch, keep the running fold
            tokens, endorsement = token_policy(settings), endorsement_policy(settings)
            fresh = FoldState.start(account, tokens, endorsement)
            fresh.absorb(entries_of_rows(await get_account_rows(conn, account, 0, size)))
            found = fresh.balance(as_of)
            assert found is not None
        self._keep((settings.database.url, account), state, size)
        return found, state.receipts

    async def save(self, conn: asyncpg.Connection, settings: Settings, account: str, size: int, as_of: int) -> bool:
        """Fold the account over the log's first `size` entries, settle it at `as_of` and save that fold (the
        fold-saving worker's step); a fold that was in memory stays there, brought up to date. False if it
        could not be saved. Settled receipts are saved packed: restoring then settles only what came due
        since `as_of`, not the account's whole history."""
        state, kept = await self._current(conn, settings, account, size, pause=True)
        state.balance(as_of)  # None (nothing done) if a query already answered a later time
        await asyncio.sleep(0)  # settling a long history and packing it are two long steps: others run between
        saved, done = state.to_bytes(), False
        try:
            async with conn.transaction():  # a savepoint inside the caller's transaction, if any
                await put_balance_fold(conn, account, size, policy_key(state.policy, state.endorsement), saved)
            done = True
        except asyncpg.PostgresError:
            log.warning("could not save the balance fold of %s", account, exc_info=True)
        finally:
            if kept:  # as restored from what was saved: packed, smaller in memory
                packed = FoldState.from_bytes(saved, state.policy, state.endorsement) if done else state
                self._keep((settings.database.url, account), packed, size)
        return done


BALANCES = BalanceCache()


class FoldSaver:
    """Keeps the saved folds (reward_balance_folds) of busy local accounts near the published log.

    Each round counts, per local account, the index rows the log published since the last round
    (on its first round: since the account's saved fold, or all of them) and saves the fold of
    every account `save_after` or more rows behind. So the first balance query of any account,
    asked before or not, after a restart or not, reads one saved fold plus fewer than
    `save_after` rows (more only for rows published since the last round), and no query
    folds a long history or writes. A quiet account (fewer rows in all) is never saved: it
    is cheap to fold. The counts are kept in memory; a new process counts again.
    """

    def __init__(self, cache: BalanceCache = BALANCES, save_after: int = SAVE_AFTER):
        self.cache, self.save_after = cache, save_after
        self.scanned = 0  # the log size up to which rows are counted in `behind`
        self.behind: dict[str, int] = {}
        self.key: str | None = None  # the policies the counts are against

    async def round(self, conn: asyncpg.Connection, settings: Settings, now: float | None = None) -> int:
        """Count what was published since the last round and save the folds that are due; returns how many."""
        size = (await get_state(conn)).published_size or 0
        as_of = int(time.time() if now is None else now)
        key = policy_key(token_policy(settings), endorsement_policy(settings))
        if key != self.key or size < self.scanned:  # other policies, or another log: count from the saved folds
            self.behind, self.scanned, self.key = {}, 0, key
        if size > self.scanned:
            for account, rows in await accounts_behind(conn, self.scanned, size, key):
                self.behind[account] = self.behind.get(account, 0) + rows
            self.scanned = size
        saved = 0
        for account in [a for a, rows in self.behind.items() if rows >= self.save_after]:
            if await self.cache.save(conn, settings, account, size, as_of):
                del self.behind[account]
                saved += 1
        return saved


async def account_balance(conn: asyncpg.Connection, settings: Settings, account: str,
                          now: float | None = None) -> tuple[Balance, int]:
    """The account's balance over the published (witnessed) part of our log, and that log size."""
    size = (await get_state(conn)).published_size or 0
    as_of = int(time.time() if now is None else now)
    found, _ = await BALANCES.balance(conn, settings, account, size, as_of)
    return found, size


async def mint_if_due(conn: asyncpg.Connection, ctx: RewardsContext, account: str,
                      now: float | None = None) -> Mint | None:
    """Append the mint the policy allows for a local account now, if any (its own transaction)."""
    if url_domain(account) != ctx.keys.domain:
        raise ValueError(f"{account} is not an account of {ctx.keys.domain}: an instance mints for its own only")
    async with conn.transaction():
        await lock_sequence(conn)
        entries = [parse_entry(leaf) for leaf in await get_account_entries(conn, account)]
        as_of = int(time.time() if now is None else now)
        mint = next_mint(fold_balance(entries, account, as_of, token_policy(ctx.settings)), token_policy(ctx.settings))
        if mint is None:
            return None
        index = await append_entry(conn, sign_note(build_mint(mint), [ctx.keys.receipts]))
        await insert_mint_index(conn, mint.account, mint.seq, index, mint.points, mint.tokens, mint.time)
        await spend_store.credit(conn, mint.account, mint.tokens)  # what the account may spend grows with it
    log.info("minted", extra={"account": account, "tokens": mint.tokens, "points": mint.points, "index": index})
    return mint


async def expire_if_due(conn: asyncpg.Connection, ctx: RewardsContext, account: str,
                        now: float | None = None) -> Expire | None:
    """Append the expiry the policy asks for a local account now, if any (its own transaction).

    It takes what is due, or less when a spend still on its way holds some of those tokens (the
    wallet cannot go below zero); the wallet gives up exactly what the entry says.
    """
    if url_domain(account) != ctx.keys.domain:
        raise ValueError(f"{account} is not an account of {ctx.keys.domain}: an instance expires its own only")
    policy = token_policy(ctx.settings)
    async with conn.transaction():
        await lock_sequence(conn)
        entries = [parse_entry(leaf) for leaf in await get_account_entries(conn, account)]
        as_of = int(time.time() if now is None else now)
        expire = next_expire(entries, account, as_of, policy, limit=await spend_store.wallet_available(conn, account))
        if expire is None:
            return None
        index = await append_entry(conn, sign_note(build_expire(expire), [ctx.keys.receipts]))
        await spend_store.insert_expiry_index(conn, account, expire.seq, index, expire.tokens, expire.time)
        if await spend_store.debit(conn, account, expire.tokens) is None:
            raise AssertionError("the wallet covered the expiry a moment ago, under the log's lock")
    log.info("tokens expired", extra={"account": account, "tokens": expire.tokens, "index": index})
    return expire


async def expire_round(pool: asyncpg.Pool, ctx: RewardsContext, now: float | None = None) -> int:
    """Expire unused tokens of every local account past the period; returns how many expiries were appended."""
    policy = token_policy(ctx.settings)
    as_of = time.time() if now is None else now
    done = 0
    for account in await spend_store.list_expiry_candidates(pool, int(as_of) - policy.token_expiry_days * 86400):
        async with pool.acquire() as conn:
            try:
                done += await expire_if_due(conn, ctx, account, as_of) is not None
            except asyncpg.UniqueViolationError:
                log.info("another process expired tokens of %s first", account)
    return done


async def mint_round(pool: asyncpg.Pool, ctx: RewardsContext) -> int:
    """Mint for every local account that is due; returns how many mints were appended."""
    policy = token_policy(ctx.settings)
    if not policy.tokens_enabled:
        return 0
    minted = 0
    for account in await list_mint_candidates(pool, policy.mint_threshold):
        async with pool.acquire() as conn:
            try:
                minted += await mint_if_due(conn, ctx, account) is not None
            except asyncpg.UniqueViolationError:
                log.info("another process minted for %s first", account)  # its mint stands; ours rolled back
    return minted


class UnknownAccount(LookupError):
    """The name is not a local account of this instance; the message says why."""


def local_name(acct: str, domain: str) -> str:
    """The account name in `name`, `@name` or `name@domain`; UnknownAccount for another instance's account."""
    name, _, host = acct.removeprefix("@").partition("@")
    if not name or (host and host.lower() != domain):
        raise UnknownAccount(f"{acct} is not an account on this instance")
    return name


async def balance_document(conn: asyncpg.Connection, ctx: RewardsContext, acct: str,
                           now: float | None = None) -> dict:
    """What /rewards/balance/<acct> serves and `fedserver rewards balance --json` prints."""
    name = local_name(acct, ctx.keys.domain)
    actor = await get_account_uri(conn, name)
    if actor is None:
        raise UnknownAccount(f"no account named {name} here")
    size = (await get_state(conn)).published_size or 0
    found, receipts = await BALANCES.balance(conn, ctx.settings, actor, size, int(time.time() if now is None else now))
    unpublished = await unpublished_points(conn, actor, size)
    return {
        "account": f"{name}@{ctx.keys.domain}", "actor": actor, **found.as_dict(), "log_size": size,
        "log": {"origin": ctx.keys.origin, "size": size}, "receipts": receipts, "unpublished_points": unpublished,
        "policy": {key: value for key, value in token_policy(ctx.settings).as_dict().items()
                   if key in ("settlement_seconds", "points_per_token", "mint_threshold")},
    }
