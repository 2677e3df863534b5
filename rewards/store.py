"""SQL for members, receipts, receipt deliveries, witness state, evidence, peer heads and alerts.

Functions take a connection; the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timezone

import asyncpg

from fedserver.repo import jobs
from fedserver.repo.jobs import Job, Queue
from fedserver.repo.session_state import keeps_session_state
from rewards.endorse import EndorsementBudget
from rewards.note import Ed25519Verifier
from rewards.receipt import Receipt

DELIVERY_CHANNEL = "rewards_receipt_deliveries"
FOLD_SAVER_LOCK = 0x7265_7761_7264_666C  # "rewardfl": one process saves balance folds at a time

# Receipts we issued, to be countersigned: a job table. A reversal is claimable only once the
# receipt it reverses is countersigned: the beneficiary's log must hold the receipt before the
# entry that takes its points back. Kept after they finish (undos look them up).
RECEIPT_DELIVERIES = Queue(
    table="rewards_receipt_deliveries", channel=DELIVERY_CHANNEL, order_by="next_attempt_at",
    columns=("receipt_id", "target_domain", "target_url", "body"),
    ready="""NOT EXISTS (SELECT 1 FROM rewards_receipt_deliveries o
                         WHERE o.id = q.reverses AND o.state <> 'delivered')""",
    lease_seconds=120.0, max_attempts=16,
)


# Keys


async def get_key_seeds(conn: asyncpg.Connection | asyncpg.Pool, names: list[str]) -> dict[str, bytes]:
    """The stored seeds of these reward keys, by name."""
    rows = await conn.fetch("SELECT name, seed FROM rewards_keys WHERE name = ANY($1::text[])", names)
    return {row["name"]: bytes(row["seed"]) for row in rows}


async def insert_key_seed(conn: asyncpg.Connection | asyncpg.Pool, name: str, role: str, seed: bytes) -> None:
    """Store a new key's seed unless a key of that name exists (concurrent creators agree on the first)."""
    await conn.execute(
        "INSERT INTO rewards_keys (name, role, seed) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        name, role, seed,
    )


# Members


@dataclass(frozen=True)
class Member:
    """A member instance with pinned keys."""

    domain: str
    base_url: str
    receipts: Ed25519Verifier
    log_vkey: str
    witness_vkey: str

    @property
    def receipts_url(self) -> str:
        """Where receipts for this member's users are delivered."""
        return f"{self.base_url}/rewards/receipts"




async def upsert_member(conn: asyncpg.Connection, domain: str, base_url: str, vkeys: dict[str, str]) -> None:
    """Pin (or re-pin) a member's keys."""
    await conn.execute(
        """INSERT INTO rewards_members (domain, base_url, receipts_vkey, log_vkey, witness_vkey)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (domain) DO UPDATE SET base_url = EXCLUDED.base_url, receipts_vkey = EXCLUDED.receipts_vkey,
               log_vkey = EXCLUDED.log_vkey, witness_vkey = EXCLUDED.witness_vkey, added_at = now()""",
        domain, base_url, vkeys["receipts"], vkeys["log"], vkeys["witness"],
    )


async def get_member_base_url(conn: asyncpg.Connection, domain: str) -> str | None:
    """Where a pinned member instance lives, if it is one."""
    return await conn.fetchval("SELECT base_url FROM rewards_members WHERE domain = $1", domain)


async def list_members(conn: asyncpg.Connection | asyncpg.Pool) -> list[Member]:
    """Every pinned member."""
    rows = await conn.fetch("SELECT * FROM rewards_members ORDER BY domain")
    return [Member(r["domain"], r["base_url"], Ed25519Verifier.from_vkey(r["receipts_vkey"]), r["log_vkey"],
                   r["witness_vkey"]) for r in rows]


# Receipts index and daily caps


async def insert_receipt_index(conn: asyncpg.Connection, receipt: Receipt, idx: int, role: str) -> None:
    """Index a receipt appended at `idx` (its id is unique: UniqueViolationError otherwise)."""
    await conn.execute(
        """INSERT INTO rewards_receipts (receipt_id, idx, kind, actor_uri, object_uri, beneficiary_uri, points,
                                         issued_at, role)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        receipt.id, idx, receipt.kind, receipt.actor, receipt.object, receipt.beneficiary, receipt.points,
        datetime.fromtimestamp(receipt.time, timezone.utc), role,
    )


async def get_receipt_leaf(conn: asyncpg.Connection, receipt_id: str) -> tuple[int, bytes] | None:
    """The log index and leaf of a receipt id we already appended."""
    row = await conn.fetchrow(
        """SELECT r.idx, e.leaf FROM rewards_receipts r JOIN rewards_log_entries e ON e.idx = r.idx
           WHERE r.receipt_id = $1""",
        receipt_id,
    )
    return (row["idx"], bytes(row["leaf"])) if row else None


async def lookup_receipts(conn: asyncpg.Connection, receipts: list[Receipt]
                          ) -> tuple[dict[str, tuple[int, bytes]], list[str | None]]:
    """One query for the batch: receipts already in the log by id, and each object's local owner."""
    rows = await conn.fetch(
        """SELECT w.i, w.rid, r.idx, e.leaf,
                  (SELECT a.uri FROM objects o JOIN actors a ON a.id = o.actor_id
                   JOIN local_accounts l ON l.actor_id = a.id
                   WHERE o.uri = w.obj AND o.deleted_at IS NULL AND a.is_local AND a.deleted_at IS NULL
                     AND l.role <> 'instance') AS owner
           FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS w(rid, obj, i)
           LEFT JOIN rewards_receipts r ON r.receipt_id = w.rid
           LEFT JOIN rewards_log_entries e ON e.idx = r.idx
           ORDER BY w.i""",
        [r.id for r in receipts], [r.object for r in receipts],
    )
    known = {r["rid"]: (r["idx"], bytes(r["leaf"])) for r in rows if r["idx"] is not None}
    return known, [r["owner"] for r in rows]


async def countersigned_pairs(conn: asyncpg.Connection, receipts: list[Receipt]
                              ) -> dict[tuple[str, str, str, str], tuple[int, int]]:
    """For the (actor, object) pairs of `receipts`: per (actor, object, beneficiary, kind) of the receipts we
    countersigned, how many there are and their points in all."""
    rows = await conn.fetch(
        """SELECT actor_uri, object_uri, beneficiary_uri, kind, count(*) AS n, sum(points) AS total
           FROM rewards_receipts
           WHERE role = 'counterparty'
             AND (actor_uri, object_uri) IN (SELECT a, o FROM unnest($1::text[], $2::text[]) AS t(a, o))
           GROUP BY actor_uri, object_uri, beneficiary_uri, kind""",
        [r.actor for r in receipts], [r.object for r in receipts],
    )
    return {(r["actor_uri"], r["object_uri"], r["beneficiary_uri"], r["kind"]): (r["n"], r["total"]) for r in rows}


async def claim_daily_points(conn: asyncpg.Connection, actor: str, day: int, points: int, cap: int) -> bool:
    """Add points to an actor's day if that stays within the cap; False (nothing changed) otherwise."""
    if points <= 0:
        return True
    row = await conn.fetchrow(
        """INSERT INTO rewards_actor_days AS d (actor_uri, day, points)
           SELECT $1, DATE '1970-01-01' + $2::int, $3::bigint WHERE $3::bigint <= $4::bigint
           ON CONFLICT (actor_uri, day) DO UPDATE SET points = d.points + EXCLUDED.points
           WHERE d.points + EXCLUDED.points <= $4
           RETURNING points""",
        actor, day, points, cap,
    )
    return row is not None


async def points_used(conn: asyncpg.Connection, actor: str, day: int) -> int:
    """Points an actor already handed out on a UTC day."""
    value = await conn.fetchval(
        "SELECT points FROM rewards_actor_days WHERE actor_uri = $1 AND day = DATE '1970-01-01' + $2::int",
        actor, day,
    )
    return value or 0


async def get_account_uri(conn: asyncpg.Connection, name: str) -> str | None:
    """The actor id of the local account (not the instance actor) with this name."""
    return await conn.fetchval(
        """SELECT a.uri FROM actors a JOIN local_accounts l ON l.actor_id = a.id
           WHERE a.is_local AND lower(a.username) = lower($1) AND l.role <> 'instance'""", name)


async def unpublished_points(conn: asyncpg.Connection, beneficiary: str, published_size: int) -> int:
    """Points credited to a beneficiary by entries not yet in a published checkpoint (at `published_size` or later)."""
    return await conn.fetchval(
        "SELECT coalesce(sum(points), 0)::bigint FROM rewards_receipts WHERE beneficiary_uri = $1 AND idx >= $2",
        beneficiary, published_size)


async def get_account_entries(conn: asyncpg.Connection, account: str, size: int | None = None) -> list[bytes]:
    """The log leaves about an account (receipts it earned or gave, its mints and spends) below `size`, in log order."""
    rows = await conn.fetch(
        """SELECT e.idx, e.leaf FROM rewards_log_entries e
           WHERE e.idx IN (SELECT idx FROM rewards_receipts WHERE beneficiary_uri = $1
                           UNION SELECT idx FROM rewards_receipts WHERE actor_uri = $1
                           UNION SELECT idx FROM rewards_mints WHERE account_uri = $1
                           UNION SELECT idx FROM token_spends WHERE account_uri = $1 AND idx IS NOT NULL
                           UNION SELECT idx FROM token_spends WHERE seller_uri = $1 AND idx IS NOT NULL
                           UNION SELECT idx FROM rewards_expiries WHERE account_uri = $1)
             AND ($2::bigint IS NULL OR e.idx < $2)
           ORDER BY e.idx""",
        account, size,
    )
    return [bytes(r["leaf"]) for r in rows]


async def get_account_rows(conn: asyncpg.Connection, account: str, begin: int, end: int) -> list[asyncpg.Record]:
    """What the log's index says of the entries about an account in [begin, end), in log order: the same entries
    as `get_account_entries`, read from their index rows instead of parsed from their bytes.

    Columns: idx, t (r receipt, m mint, s spend, e expiry), kind, a, o, b, n, m, at, x, y, q (see
    rewards.balance_state.entries_of_rows for what each means per type).
    """
    return await conn.fetch(
        """SELECT idx, 'r' AS t, kind, actor_uri AS a, object_uri AS o, beneficiary_uri AS b, points AS n,
                  NULL::bigint AS m, extract(epoch FROM issued_at)::bigint AS at, NULL AS x, NULL AS y, NULL::int AS q
             FROM rewards_receipts WHERE beneficiary_uri = $1 AND idx >= $2 AND idx < $3
           UNION ALL
           SELECT idx, 'r', kind, actor_uri, object_uri, beneficiary_uri, points, NULL,
                  extract(epoch FROM issued_at)::bigint, NULL, NULL, NULL
             FROM rewards_receipts WHERE actor_uri = $1 AND beneficiary_uri <> $1 AND idx >= $2 AND idx < $3
           UNION ALL
           SELECT idx, 'm', NULL, account_uri, NULL, NULL, points, tokens, extract(epoch FROM minted_at)::bigint,
                  NULL, NULL, seq
             FROM rewards_mints WHERE account_uri = $1 AND idx >= $2 AND idx < $3
           UNION ALL
           SELECT idx, 's', kind, account_uri, order_uri, seller_uri, tokens, NULL,
                  extract(epoch FROM spent_at)::bigint, spend_id, listing_uri, quantity
             FROM token_spends WHERE (account_uri = $1 OR seller_uri = $1) AND idx >= $2 AND idx < $3
           UNION ALL
           SELECT idx, 'e', NULL, account_uri, NULL, NULL, tokens, NULL, extract(epoch FROM expired_at)::bigint,
                  NULL, NULL, seq
             FROM rewards_expiries WHERE account_uri = $1 AND idx >= $2 AND idx < $3
           ORDER BY 1""",
        account, begin, end,
    )


async def get_balance_fold(conn: asyncpg.Connection, account: str, size: int, policy_key: str
                           ) -> tuple[int, bytes] | None:
    """The saved fold of an account (log size, rewards.balance_state.FoldState.to_bytes) over at most `size`
    entries, folded under `policy_key`, and still over the same log (its last entry unchanged); else None."""
    row = await conn.fetchrow(
        """SELECT f.log_size, f.state FROM reward_balance_folds f
           JOIN rewards_log_entries e ON e.idx = f.log_size - 1 AND sha256(e.leaf) = f.last_leaf_sha256
           WHERE f.account = $1 AND f.log_size <= $2 AND f.policy_key = $3""",
        account, size, policy_key,
    )
    return None if row is None else (row["log_size"], bytes(row["state"]))


async def accounts_behind(conn: asyncpg.Connection, begin: int, end: int, policy_key: str) -> list[tuple[str, int]]:
    """Local accounts with index rows in [begin, end) past their fold saved under `policy_key` (all of their rows
    there when none is saved), and how many: what the fold-saving worker counts to know whose fold to save."""
    rows = await conn.fetch(
        """WITH touched(account, idx) AS (
               SELECT beneficiary_uri, idx FROM rewards_receipts WHERE idx >= $1 AND idx < $2
               UNION ALL
               SELECT actor_uri, idx FROM rewards_receipts
                WHERE actor_uri <> beneficiary_uri AND idx >= $1 AND idx < $2
               UNION ALL
               SELECT account_uri, idx FROM rewards_mints WHERE idx >= $1 AND idx < $2
               UNION ALL
               SELECT account_uri, idx FROM token_spends WHERE idx >= $1 AND idx < $2
               UNION ALL
               SELECT seller_uri, idx FROM token_spends WHERE seller_uri <> account_uri AND idx >= $1 AND idx < $2
               UNION ALL
               SELECT account_uri, idx FROM rewards_expiries WHERE idx >= $1 AND idx < $2)
           SELECT t.account, count(*) AS n FROM touched t
           JOIN actors a ON a.uri = t.account AND a.is_local
           LEFT JOIN reward_balance_folds f ON f.account = t.account AND f.policy_key = $3
           WHERE t.idx >= coalesce(f.log_size, 0)
           GROUP BY t.account""",
        begin, end, policy_key,
    )
    return [(r["account"], r["n"]) for r in rows]


async def try_fold_lock(conn: asyncpg.Connection) -> bool:
    """Take the fold-saving worker's lock on this session, if no other process holds it."""
    keeps_session_state(conn)  # the pool releases the lock too, whatever happens to the caller
    return await conn.fetchval("SELECT pg_try_advisory_lock($1)", FOLD_SAVER_LOCK)


async def release_fold_lock(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", FOLD_SAVER_LOCK)


async def put_balance_fold(conn: asyncpg.Connection, account: str, size: int, policy_key: str, state: bytes) -> None:
    """Save an account's fold over the log's first `size` entries, unless a newer one under that key is saved."""
    await conn.execute(
        """INSERT INTO reward_balance_folds AS f (account, log_size, last_leaf_sha256, policy_key, state)
           SELECT $1, $2::bigint, sha256(leaf), $3, $4 FROM rewards_log_entries WHERE idx = $2::bigint - 1
           ON CONFLICT (account) DO UPDATE SET log_size = EXCLUDED.log_size, policy_key = EXCLUDED.policy_key,
               last_leaf_sha256 = EXCLUDED.last_leaf_sha256, state = EXCLUDED.state, updated_at = now()
           WHERE f.log_size < EXCLUDED.log_size OR f.policy_key <> EXCLUDED.policy_key
              OR f.last_leaf_sha256 IS DISTINCT FROM (SELECT sha256(leaf) FROM rewards_log_entries
                                                      WHERE idx = f.log_size - 1)""",
        account, size, policy_key, state,
    )


async def insert_mint_index(conn: asyncpg.Connection, account: str, seq: int, idx: int, points: int, tokens: int,
                            minted_at: int) -> None:
    """Index a mint appended at `idx`; a second mint with the same (account, seq) is a UniqueViolationError."""
    await conn.execute(
        """INSERT INTO rewards_mints (account_uri, seq, idx, points, tokens, minted_at)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        account, seq, idx, points, tokens, datetime.fromtimestamp(minted_at, UTC),
    )


async def list_mint_candidates(conn: asyncpg.Connection | asyncpg.Pool, threshold: int) -> list[str]:
    """Local accounts whose credited points, less what they minted, reach `threshold` (settlement is checked later)."""
    rows = await conn.fetch(
        """SELECT r.beneficiary_uri AS account FROM rewards_receipts r
           JOIN actors a ON a.uri = r.beneficiary_uri AND a.is_local
           WHERE r.points > 0 GROUP BY r.beneficiary_uri
           HAVING sum(r.points) - coalesce((SELECT sum(m.points) FROM rewards_mints m
                                           WHERE m.account_uri = r.beneficiary_uri), 0) >= greatest($1::bigint, 1)
           ORDER BY 1""",
        threshold,
    )
    return [r["account"] for r in rows]


async def claim_daily_points_many(conn: asyncpg.Connection, claims: dict[tuple[str, int], int], cap: int
                                  ) -> set[tuple[str, int]]:
    """Add each (actor, day) total if it stays within the cap, in one statement; returns those added."""
    wanted = [(actor, day, points) for (actor, day), points in claims.items() if points > 0]
    if not wanted:
        return set(claims)
    rows = await conn.fetch(
        """INSERT INTO rewards_actor_days AS d (actor_uri, day, points)
           SELECT w.actor, DATE '1970-01-01' + w.day, w.points
           FROM unnest($1::text[], $2::int[], $3::bigint[]) AS w(actor, day, points) WHERE w.points <= $4
           ON CONFLICT (actor_uri, day) DO UPDATE SET points = d.points + EXCLUDED.points
           WHERE d.points + EXCLUDED.points <= $4
           RETURNING actor_uri, (day - DATE '1970-01-01') AS day""",
        [w[0] for w in wanted], [w[1] for w in wanted], [w[2] for w in wanted], cap,
    )
    return {(r["actor_uri"], r["day"]) for r in rows} | {key for key, points in claims.items() if points <= 0}


# Policy v2: endorsement budgets, reciprocal counts, per-instance quotas, same-instance reversals


async def lock_budget(conn: asyncpg.Connection, actor: str, full: EndorsementBudget) -> EndorsementBudget:
    """An account's budget, locked until the caller commits (created as `full` on its first endorsement)."""
    row = await conn.fetchrow(
        """INSERT INTO rewards_budgets AS b (actor_uri, mana, updated_at) VALUES ($1, $2, $3)
           ON CONFLICT (actor_uri) DO UPDATE SET mana = b.mana RETURNING mana, updated_at""",
        actor, full.mana, full.updated_at,
    )
    return EndorsementBudget(row["mana"], row["updated_at"])


async def save_budget(conn: asyncpg.Connection, actor: str, budget: EndorsementBudget) -> None:
    """Store an account's budget after an endorsement (its row is locked by `lock_budget`)."""
    await conn.execute("UPDATE rewards_budgets SET mana = $2, updated_at = $3 WHERE actor_uri = $1",
                       actor, budget.mana, budget.updated_at)


async def endorsement_counts(conn: asyncpg.Connection, a: str, b: str, since: int, kinds: list[str]
                             ) -> tuple[int, int, int]:
    """Since `since`: (A's endorsements of B, B's of A, all of A's), from our log and A's queued receipts."""
    row = await conn.fetchrow(
        """WITH seen AS (
               SELECT receipt_id, actor_uri, beneficiary_uri FROM rewards_receipts
               WHERE actor_uri IN ($1, $2) AND kind = ANY($4::text[]) AND issued_at >= to_timestamp($3)
               UNION
               SELECT receipt_id, actor_uri, beneficiary_uri FROM rewards_receipt_deliveries
               WHERE actor_uri = $1 AND kind = ANY($4::text[]) AND state <> 'failed'
                 AND created_at >= to_timestamp($3) AND beneficiary_uri IS NOT NULL)
           SELECT count(*) FILTER (WHERE actor_uri = $1 AND beneficiary_uri = $2) AS a_to_b,
                  count(*) FILTER (WHERE actor_uri = $2 AND beneficiary_uri = $1) AS b_to_a,
                  count(*) FILTER (WHERE actor_uri = $1) AS a_total
           FROM seen""",
        a, b, since, kinds,
    )
    return row["a_to_b"], row["b_to_a"], row["a_total"]


async def lock_instance_days(conn: asyncpg.Connection, keys: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """Points credited per (instance, UTC day), rows locked until the caller commits (sorted: no deadlock)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = await conn.fetch(
        """INSERT INTO rewards_instance_days AS d (domain, day, points)
           SELECT w.domain, DATE '1970-01-01' + w.day, 0
           FROM unnest($1::text[], $2::int[]) WITH ORDINALITY AS w(domain, day, i) ORDER BY w.i
           ON CONFLICT (domain, day) DO UPDATE SET points = d.points
           RETURNING domain, (day - DATE '1970-01-01') AS day, points""",
        [k[0] for k in wanted], [k[1] for k in wanted],
    )
    return {(r["domain"], r["day"]): r["points"] for r in rows}


async def add_instance_points(conn: asyncpg.Connection, credited: dict[tuple[str, int], int]) -> None:
    """Add granted points to (instance, day) rows locked by `lock_instance_days`."""
    positive = [(k, v) for k, v in credited.items() if v > 0]
    if positive:
        await conn.execute(
            """UPDATE rewards_instance_days d SET points = d.points + w.points
               FROM unnest($1::text[], $2::int[], $3::bigint[]) AS w(domain, day, points)
               WHERE d.domain = w.domain AND d.day = DATE '1970-01-01' + w.day""",
            [k[0] for k, _ in positive], [k[1] for k, _ in positive], [v for _, v in positive],
        )


async def local_receipt_history(conn: asyncpg.Connection, kind: str, actor: str, obj: str
                                ) -> list[tuple[str, int, bool]]:
    """Our same-instance receipts of an interaction and their reversals, in log order: (id, points, is undo)."""
    rows = await conn.fetch(
        """SELECT receipt_id, points, kind <> $1 AS undo FROM rewards_receipts
           WHERE actor_uri = $2 AND object_uri = $3 AND kind IN ($1, 'undo-' || $1) AND role = 'local'
           ORDER BY idx FOR UPDATE""",
        kind, actor, obj,
    )
    return [(r["receipt_id"], r["points"], r["undo"]) for r in rows]


# Receipt deliveries


@dataclass(frozen=True)
class ReceiptDelivery:
    """A receipt we issued, to be countersigned by the beneficiary's instance (a claimed job)."""

    id: int
    receipt_id: str
    target_domain: str
    target_url: str
    body: bytes
    attempts: int
    lease: datetime

    @classmethod
    def of(cls, job: Job) -> ReceiptDelivery:
        """The delivery a claimed job of RECEIPT_DELIVERIES holds."""
        return cls(job.id, job["receipt_id"], job["target_domain"], job["target_url"], bytes(job["body"]),
                   job.attempts, job.lease)


@dataclass(frozen=True)
class ReversibleDelivery:
    """The delivery of a like or announce receipt that an undo can still reverse."""

    id: int
    points: int


async def enqueue_receipt_delivery(conn: asyncpg.Connection, receipt: Receipt, domain: str, url: str,
                                   body: bytes, reverses: int | None = None) -> int:
    """Queue a signed receipt for delivery (in the caller's transaction); `reverses` is the delivery it undoes."""
    row_id = await conn.fetchval(
        """INSERT INTO rewards_receipt_deliveries (receipt_id, target_domain, target_url, body, kind, actor_uri,
                                                   object_uri, points, reverses, beneficiary_uri)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id""",
        receipt.id, domain, url, body, receipt.kind, receipt.actor, receipt.object, receipt.points, reverses,
        receipt.beneficiary,
    )
    await conn.execute("SELECT pg_notify($1, '')", DELIVERY_CHANNEL)
    return row_id


async def get_reversible_delivery(conn: asyncpg.Connection, kind: str, actor: str, obj: str
                                  ) -> ReversibleDelivery | None:
    """The newest receipt of this interaction that is queued or countersigned and not reversed yet.

    Locked FOR SHARE until the caller commits, so it cannot be marked failed meanwhile
    and leave the caller's reversal behind (`mark_receipt_failed` waits for the lock).
    """
    row = await conn.fetchrow(
        """SELECT id, points FROM rewards_receipt_deliveries o
           WHERE actor_uri = $2 AND object_uri = $3 AND kind = $1 AND state <> 'failed'
             AND NOT EXISTS (SELECT 1 FROM rewards_receipt_deliveries r WHERE r.reverses = o.id)
           ORDER BY id DESC LIMIT 1 FOR SHARE""",
        kind, actor, obj,
    )
    return ReversibleDelivery(row["id"], row["points"]) if row else None


async def claim_receipt_deliveries(conn: asyncpg.Connection, limit: int, lease_seconds: float
                                   ) -> list[ReceiptDelivery]:
    """Lease due deliveries (a crashed worker's rows come back later); reversals wait for their receipt."""
    queue = replace(RECEIPT_DELIVERIES, lease_seconds=lease_seconds)
    return [ReceiptDelivery.of(job) for job in await jobs.claim(conn, queue, limit)]


async def _finish_receipt_delivery(conn: asyncpg.Connection, delivery_id: int, state: str, status: int | None,
                                   error: str | None, log_index: int | None = None) -> None:
    """Mark a delivery delivered or failed for good."""
    await conn.execute(
        """UPDATE rewards_receipt_deliveries SET state = $2, last_status = $3, last_error = $4, log_index = $5,
                  locked_until = NULL, finished_at = now() WHERE id = $1""",
        delivery_id, state, status, error, log_index,
    )


async def mark_receipt_delivered(conn: asyncpg.Connection, delivery_id: int, log_index: int) -> None:
    """Mark a delivery countersigned (appended at `log_index`); wake the workers if a reversal waited for it."""
    await _finish_receipt_delivery(conn, delivery_id, "delivered", 200, None, log_index)
    await conn.execute(
        """SELECT pg_notify($1, '') FROM rewards_receipt_deliveries
           WHERE reverses = $2 AND state = 'queued'""",
        DELIVERY_CHANNEL, delivery_id,
    )


async def mark_receipt_failed(conn: asyncpg.Connection, delivery: ReceiptDelivery, status: int | None,
                              error: str) -> int:
    """Mark a delivery failed for good, and its queued reversal with it; returns how many reversals.

    Points that were never granted must not be taken away, so the reversal is never sent.
    Two statements in one transaction: the second sees a reversal committed while the
    first waited for `get_reversible_delivery`'s lock.
    """
    async with conn.transaction():
        await _finish_receipt_delivery(conn, delivery.id, "failed", status, error)
        done = await conn.execute(
            """UPDATE rewards_receipt_deliveries SET state = 'failed', last_error = $2, locked_until = NULL,
                      finished_at = now()
               WHERE reverses = $1 AND state = 'queued'""",
            delivery.id, f"not sent: the receipt it reverses, {delivery.receipt_id}, was refused for good ({error})",
        )
    return int(done.split()[-1])


# Witness state and evidence


@dataclass(frozen=True)
class WitnessState:
    """The latest checkpoint we cosigned for a log."""

    size: int
    root: bytes
    checkpoint: bytes


async def get_witness_state(conn: asyncpg.Connection, origin: str) -> WitnessState | None:
    """Our record for a log origin, if we ever cosigned one of its checkpoints."""
    row = await conn.fetchrow("SELECT size, root, checkpoint FROM rewards_witness_state WHERE origin = $1", origin)
    return WitnessState(row["size"], bytes(row["root"]), bytes(row["checkpoint"])) if row else None


async def get_cosigned_by_origin_hash(conn: asyncpg.Connection, hex_hash: str) -> tuple[bytes, int] | None:
    """(checkpoint, when we cosigned it, Unix seconds) for the log whose origin has this hex SHA-256."""
    row = await conn.fetchrow(
        """SELECT checkpoint, extract(epoch FROM updated_at)::bigint AS at FROM rewards_witness_state
           WHERE encode(sha256(convert_to(origin, 'UTF8')), 'hex') = $1""",
        hex_hash,
    )
    return (bytes(row["checkpoint"]), row["at"]) if row else None


async def swap_witness_state(conn: asyncpg.Connection, origin: str, old: WitnessState | None,
                             new: WitnessState) -> bool:
    """Compare-and-swap: replace the record only if it is still `old` (None: no record yet)."""
    if old is None:
        status = await conn.execute(
            """INSERT INTO rewards_witness_state (origin, size, root, checkpoint) VALUES ($1, $2, $3, $4)
               ON CONFLICT (origin) DO NOTHING""",
            origin, new.size, new.root, new.checkpoint,
        )
        return status == "INSERT 0 1"
    status = await conn.execute(
        """UPDATE rewards_witness_state SET size = $2, root = $3, checkpoint = $4, updated_at = now()
           WHERE origin = $1 AND size = $5 AND root = $6""",
        origin, new.size, new.root, new.checkpoint, old.size, old.root,
    )
    return status == "UPDATE 1"


async def insert_evidence(conn: asyncpg.Connection | asyncpg.Pool, origin: str, kind: str, reason: str,
                          body: bytes, known: bytes | None) -> None:
    """Keep a signed artefact that shows a log misbehaving (or a refused request)."""
    await conn.execute(
        """INSERT INTO rewards_evidence (origin, kind, reason, body, known_checkpoint) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT DO NOTHING""",
        origin, kind, reason, body, known,
    )


async def insert_alert(conn: asyncpg.Connection | asyncpg.Pool, origin: str, kind: str, message: str) -> None:
    """Raise an alert for administrators; the same one while unresolved is counted, not repeated."""
    await conn.execute(
        """INSERT INTO rewards_alerts (origin, kind, message) VALUES ($1, $2, $3)
           ON CONFLICT (origin, kind, md5(message)) WHERE resolved_at IS NULL
           DO UPDATE SET seen = rewards_alerts.seen + 1, last_seen_at = now()""",
        origin, kind, message,
    )


@dataclass(frozen=True)
class Alert:
    """An alert for administrators: a member log that forked, was rewritten or truncated."""

    id: int
    origin: str
    kind: str
    message: str
    created_at: datetime
    seen: int  # times raised while unresolved
    last_seen_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None  # the administrator's account name


async def list_alerts(conn: asyncpg.Connection | asyncpg.Pool, *, include_resolved: bool = True,
                      limit: int = 200) -> list[Alert]:
    """Alerts, newest first."""
    rows = await conn.fetch(
        """SELECT r.id, r.origin, r.kind, r.message, r.created_at, r.seen, r.last_seen_at, r.resolved_at,
                  a.username AS resolved_by
           FROM rewards_alerts r LEFT JOIN actors a ON a.id = r.resolved_by
           WHERE $1 OR r.resolved_at IS NULL ORDER BY r.id DESC LIMIT $2""",
        include_resolved, limit,
    )
    return [Alert(**dict(row)) for row in rows]


async def count_open_alerts(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    """Alerts no administrator has resolved yet."""
    return await conn.fetchval("SELECT count(*) FROM rewards_alerts WHERE resolved_at IS NULL")


async def resolve_alert(conn: asyncpg.Connection | asyncpg.Pool, alert_id: int, account_id: int | None
                        ) -> bool | None:
    """Mark an alert resolved by an administrator: True, False if it already was, None if there is none."""
    row = await conn.fetchrow(
        """WITH changed AS (UPDATE rewards_alerts SET resolved_at = now(), resolved_by = $2
                            WHERE id = $1 AND resolved_at IS NULL RETURNING id)
           SELECT EXISTS (SELECT 1 FROM changed) AS changed,
                  EXISTS (SELECT 1 FROM rewards_alerts WHERE id = $1) AS known""",
        alert_id, account_id,
    )
    return bool(row["changed"]) if row["known"] else None


# Peer heads (what verify and the monitor last accepted)


async def get_peer_head(conn: asyncpg.Connection | asyncpg.Pool, origin: str) -> WitnessState | None:
    """The latest checkpoint we verified for a log."""
    row = await conn.fetchrow("SELECT size, root, checkpoint FROM rewards_peer_heads WHERE origin = $1", origin)
    return WitnessState(row["size"], bytes(row["root"]), bytes(row["checkpoint"])) if row else None


async def advance_peer_head(conn: asyncpg.Connection | asyncpg.Pool, origin: str, head: WitnessState) -> None:
    """Remember a verified checkpoint; never moves backwards."""
    await conn.execute(
        """INSERT INTO rewards_peer_heads AS h (origin, size, root, checkpoint) VALUES ($1, $2, $3, $4)
           ON CONFLICT (origin) DO UPDATE SET size = EXCLUDED.size, root = EXCLUDED.root,
               checkpoint = EXCLUDED.checkpoint, checked_at = now()
           WHERE h.size <= EXCLUDED.size""",
        origin, head.size, head.root, head.checkpoint,
    )


async def list_witnessed_logs(conn: asyncpg.Connection, limit: int = 100) -> list[asyncpg.Record]:
    """The logs we cosign as a witness (origin, size, updated_at), most recently cosigned first."""
    return await conn.fetch(
        "SELECT origin, size, updated_at FROM rewards_witness_state ORDER BY updated_at DESC LIMIT $1", limit)


async def recent_receipts(conn: asyncpg.Connection, beneficiary: str, limit: int = 20) -> list[asyncpg.Record]:
    """A beneficiary's newest receipts (what earned the points: kind, who, which post, how many, when, log index)."""
    return await conn.fetch(
        """SELECT kind, actor_uri, object_uri, points, issued_at, idx FROM rewards_receipts
           WHERE beneficiary_uri = $1 ORDER BY idx DESC LIMIT $2""", beneficiary, limit)
