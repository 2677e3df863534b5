"""Balances and minting over our own log: read an account's entries, fold them, append mints.

The arithmetic is pure (rewards/balance.py); here: which entries, at which log size, and
the transaction that appends a mint. A mint is decided while holding the log's sequencing
lock, over every committed entry about the account, and appended in the same transaction
with its (account, seq) index row: it is in the log exactly once, after exactly the entries
it was computed from, or not at all.
"""

from __future__ import annotations

import logging
import time

import asyncpg

from rewards.balance import Balance, TokenPolicy, fold_balance, next_mint, parse_entry
from rewards.context import RewardsContext, token_policy
from rewards.logstore import append_entry, get_state, lock_sequence
from rewards.mint import Mint, build_mint
from rewards.note import sign_note
from rewards.points import url_domain
from rewards.store import balance, get_account_entries, get_account_uri, insert_mint_index, list_mint_candidates

log = logging.getLogger("rewards.minting")


async def account_balance(conn: asyncpg.Connection, policy: TokenPolicy, account: str,
                          now: float | None = None) -> tuple[Balance, int]:
    """The account's balance over the published (witnessed) part of our log, and that log size."""
    size = (await get_state(conn)).published_size or 0
    entries = [parse_entry(leaf) for leaf in await get_account_entries(conn, account, size)]
    as_of = int(time.time() if now is None else now)
    return fold_balance(entries, account, as_of, policy), size


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
    log.info("minted", extra={"account": account, "tokens": mint.tokens, "points": mint.points, "index": index})
    return mint


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
    found, size = await account_balance(conn, token_policy(ctx.settings), actor, now)
    _, unpublished, receipts = await balance(conn, actor, size)
    return {
        "account": f"{name}@{ctx.keys.domain}", "actor": actor, **found.as_dict(), "log_size": size,
        "log": {"origin": ctx.keys.origin, "size": size}, "receipts": receipts, "unpublished_points": unpublished,
        "policy": {key: value for key, value in token_policy(ctx.settings).as_dict().items()
                   if key in ("settlement_seconds", "points_per_token", "mint_threshold")},
    }
