"""The SQL of paying with tokens: wallets (what an account may still spend) and the spends we issued or
countersigned (migration 0024). Each function runs in the caller's connection or transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from rewards.spend import Spend
from rewards.store import DELIVERY_CHANNEL


async def wallet_available(conn: asyncpg.Connection | asyncpg.Pool, account: str) -> int:
    """Tokens the account may spend now (0 for an account that never minted)."""
    return await conn.fetchval("SELECT available FROM token_wallets WHERE account_uri = $1", account) or 0


async def debit(conn: asyncpg.Connection, account: str, tokens: int) -> int | None:
    """Take `tokens` from the wallet in one guarded statement; the new balance, or None when it does not cover them.

    The row lock serialises concurrent debits of one account; the WHERE (and, behind it, the CHECK of
    migration 0024) keeps the balance from going below zero.
    """
    return await conn.fetchval(
        """UPDATE token_wallets SET available = available - $2, updated_at = now()
           WHERE account_uri = $1 AND available >= $2 RETURNING available""",
        account, tokens,
    )


async def credit(conn: asyncpg.Connection, account: str, tokens: int) -> int:
    """Give `tokens` to the wallet (a mint, a refused spend, a countersigned undo-spend); the new balance."""
    return await conn.fetchval(
        """INSERT INTO token_wallets AS w (account_uri, available) VALUES ($1, $2)
           ON CONFLICT (account_uri) DO UPDATE SET available = w.available + EXCLUDED.available, updated_at = now()
           RETURNING available""",
        account, tokens,
    )


@dataclass(frozen=True)
class SpendRow:
    """A spend we issued or countersigned, and where it stands."""

    spend_id: str
    kind: str
    order_uri: str
    account_uri: str
    seller_uri: str
    listing_uri: str
    quantity: int
    tokens: int
    role: str
    state: str
    reason: str
    idx: int | None
    delivery_id: int | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> SpendRow:
        return cls(*(row[name] for name in cls.__dataclass_fields__))


_COLUMNS = ", ".join(SpendRow.__dataclass_fields__)


async def insert_spend(conn: asyncpg.Connection, spend: Spend, role: str, state: str, *, idx: int | None = None,
                       delivery_id: int | None = None) -> None:
    """Record a spend (a second spend or undo of the same order is a UniqueViolationError)."""
    await conn.execute(
        """INSERT INTO token_spends (spend_id, kind, order_uri, account_uri, seller_uri, listing_uri, quantity, tokens,
                                     role, state, idx, delivery_id, spent_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
        spend.id, spend.kind, spend.order, spend.account, spend.seller, spend.listing, spend.quantity, spend.tokens,
        role, state, idx, delivery_id, datetime.fromtimestamp(spend.time, UTC),
    )


async def insert_spends(conn: asyncpg.Connection, spends: list[tuple[Spend, int]], role: str, state: str) -> None:
    """Record spends each at its log index, in one statement (a second spend or undo of an order: UniqueViolationError)."""
    await conn.executemany(
        """INSERT INTO token_spends (spend_id, kind, order_uri, account_uri, seller_uri, listing_uri, quantity, tokens,
                                     role, state, idx, spent_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)""",
        [(spend.id, spend.kind, spend.order, spend.account, spend.seller, spend.listing, spend.quantity, spend.tokens,
          role, state, idx, datetime.fromtimestamp(spend.time, UTC)) for spend, idx in spends],
    )


async def get_spend(conn: asyncpg.Connection, order_uri: str, kind: str = "spend") -> SpendRow | None:
    """The spend (or undo-spend) of an order."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM token_spends WHERE order_uri = $1 AND kind = $2",
                              order_uri, kind)
    return SpendRow.of(row) if row else None


async def get_spend_by_id(conn: asyncpg.Connection, spend_id: str) -> SpendRow | None:
    """A spend by its id."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM token_spends WHERE spend_id = $1", spend_id)
    return SpendRow.of(row) if row else None


async def get_spend_for_update(conn: asyncpg.Connection, spend_id: str) -> SpendRow | None:
    """A spend by its id, locked until the caller commits (its delivery's outcome is being recorded)."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM token_spends WHERE spend_id = $1 FOR UPDATE", spend_id)
    return SpendRow.of(row) if row else None


async def lock_spends(conn: asyncpg.Connection, spend_ids: list[str]) -> dict[str, SpendRow]:
    """The spends with these ids, locked until the caller commits (in id order: no deadlock between batches)."""
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM token_spends WHERE spend_id = ANY($1::text[]) "
                            "ORDER BY spend_id FOR UPDATE", spend_ids)
    return {r["spend_id"]: SpendRow.of(r) for r in rows}


async def mark_spends_countersigned(conn: asyncpg.Connection, appended: list[tuple[str, int]]) -> None:
    """Record where each countersigned spend went in our log: (spend id, index)."""
    await conn.execute(
        """UPDATE token_spends s SET state = 'countersigned', idx = u.idx, reason = ''
           FROM unnest($1::text[], $2::bigint[]) AS u(spend_id, idx) WHERE s.spend_id = u.spend_id""",
        [sid for sid, _ in appended], [idx for _, idx in appended])


async def mark_spend(conn: asyncpg.Connection, spend_id: str, state: str, *, idx: int | None = None,
                     reason: str = "") -> None:
    """Record the outcome of a spend we issued: countersigned (at `idx` in our log) or refused (why)."""
    await conn.execute("UPDATE token_spends SET state = $2, idx = $3, reason = $4 WHERE spend_id = $1",
                       spend_id, state, idx, reason[:1000])


async def get_leaf(conn: asyncpg.Connection, idx: int) -> bytes:
    """The log leaf at `idx`."""
    return bytes(await conn.fetchval("SELECT leaf FROM rewards_log_entries WHERE idx = $1", idx))


async def enqueue_spend(conn: asyncpg.Connection, spend: Spend, url: str, body: bytes, reverses: int | None) -> int:
    """Queue a signed spend for the maker's instance to countersign (a job of RECEIPT_DELIVERIES) and record it
    as ours and pending, in one statement; returns the delivery's id.

    An undo-spend names its spend's delivery: it is sent only once the spend is countersigned, and
    fails unsent if the spend is refused for good (whose tokens then went back already).
    """
    return await conn.fetchval(
        """WITH d AS (
               INSERT INTO rewards_receipt_deliveries (receipt_id, target_domain, target_url, body, kind, actor_uri,
                                                       object_uri, points, reverses)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id),
           s AS (
               INSERT INTO token_spends (spend_id, kind, order_uri, account_uri, seller_uri, listing_uri, quantity,
                                         tokens, role, state, delivery_id, spent_at)
               SELECT $1, $5, $7, $6, $10, $11, $12, $13, 'issuer', 'pending', d.id, $14 FROM d),
           wake AS (SELECT pg_notify($15, ''))
           SELECT d.id FROM d, wake""",
        spend.id, spend.maker_home, url, body, spend.kind, spend.account, spend.order, spend.signed_tokens, reverses,
        spend.seller, spend.listing, spend.quantity, spend.tokens, datetime.fromtimestamp(spend.time, UTC),
        DELIVERY_CHANNEL,
    )


async def insert_expiry_index(conn: asyncpg.Connection, account: str, seq: int, idx: int, tokens: int,
                              expired_at: int) -> None:
    """Index an expiry appended at `idx`; a second one with the same (account, seq) is a UniqueViolationError."""
    await conn.execute(
        """INSERT INTO rewards_expiries (account_uri, seq, idx, tokens, expired_at) VALUES ($1, $2, $3, $4, $5)""",
        account, seq, idx, tokens, datetime.fromtimestamp(expired_at, UTC))


async def list_expiry_candidates(conn: asyncpg.Connection | asyncpg.Pool, minted_before: int) -> list[str]:
    """Accounts with tokens left to spend and a mint older than the expiry period (checked exactly later)."""
    rows = await conn.fetch(
        """SELECT DISTINCT m.account_uri FROM rewards_mints m JOIN token_wallets w ON w.account_uri = m.account_uri
           WHERE m.minted_at <= $1 AND w.available > 0 ORDER BY 1""",
        datetime.fromtimestamp(minted_before, UTC))
    return [r["account_uri"] for r in rows]
