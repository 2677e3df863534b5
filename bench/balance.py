"""Balance queries at 10^6 receipts: `GET /rewards/balance/<acct>` latency, server side and over HTTP.

Run: .venv/bin/python bench/balance.py [receipts] [queries] [accounts]
Database: see bench/benchdb.py (a database is created and dropped on the server).

Builds a log of `receipts` receipts (like, announce and reply, times spread over the last 30
days) credited to `accounts` local accounts (Zipf-like: a few busy makers, many quiet ones),
with a mint for each busy one, COPYed into the log and its index as the counterparty would
append them (the signature bytes are real Ed25519 signatures of one receipt, reused: the
balance reads and folds the entries, it does not verify them; `rewards verify` does). The
whole log counts as published. Then times `balance_document` (what the endpoint computes:
the account's entries, parsed and folded) and the whole HTTP GET, one request at a time, for
random accounts (weighted like the receipts, so busy accounts are asked about more), and
separately for the busiest account. A server keeps each account's running fold
(rewards/balance_state.py) in memory; its rewards-folds worker (rewards.minting.FoldSaver) saves
the fold (table reward_balance_folds) of every local account 128 or more entries past its saved
one, off the request path: a query never folds a long history nor writes. Printed, in this order:

1. the fold saver's first round over the new log (what the worker of a server started on such a
   log does once, in the background), its time and the longest pause it gave the event loop;
2. each account's first query with nothing in memory (a fresh start: saved folds read), then
   the first query of accounts drawn uniformly among the others (mostly quiet ones, never saved),
   then later queries weighted like the receipts, then of the busiest account alone;
3. then 1% more receipts are appended and the folds in memory are forgotten before the saver ran
   again (a restart right after a burst, the worst case): each account's first query reads its
   saved fold plus the entries after it; then the saver's next round (only what was published
   since);
4. over HTTP, weighted, after that.

Prints p50/p99; target: p99 under 5 ms at 10^6 receipts.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime

import aiohttp
import asyncpg
from aiohttp import web

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from bench.benchdb import create_database, database_server, drop_database  # noqa: E402
from bench.rewards_append import percentile  # noqa: E402
from fedserver.accounts import create_account, validate_new_account  # noqa: E402
from fedserver.app import create_app  # noqa: E402
from fedserver.server import settle_garbage_collector  # noqa: E402
from fedserver.config import load_settings  # noqa: E402
from fedserver.db import init_connection  # noqa: E402
from rewards.context import load_context  # noqa: E402
from rewards.mint import Mint, build_mint  # noqa: E402
from rewards.minting import BALANCES, FoldSaver, balance_document  # noqa: E402
from rewards.note import Ed25519Signer, Note, parse_note, sign_note  # noqa: E402
from rewards.receipt import Receipt, build_receipt  # noqa: E402
from tests.support.instance import free_port  # noqa: E402

KINDS = (("like", 1), ("announce", 2), ("reply", 3))


def _weights(accounts: int) -> list[float]:
    return [1 / (rank + 1) ** 0.8 for rank in range(accounts)]


async def build(conn: asyncpg.Connection, base: str, names: list[str], count: int, start: int = 0) -> float:
    """COPY `count` receipts (and, when the log is empty, a mint per busy account) into the log and its
    index, from entry `start` on; returns seconds."""
    started = time.perf_counter()
    rng = random.Random(7 + start)
    issuer = Ed25519Signer.generate("peer.example/rewards/receipts")
    ours = Ed25519Signer.generate(f"{base.split('//')[1]}/rewards/receipts")
    sample = parse_note(sign_note("x\n", [issuer, ours]))
    now = int(time.time())
    weights = _weights(len(names))
    chunk, idx = 50_000, start
    while idx < start + count:
        entries, index = [], []
        for owner in rng.choices(names, weights, k=min(chunk, start + count - idx)):
            kind, points = rng.choice(KINDS)
            receipt = Receipt(f"peer.example/r/{idx:012x}", kind, f"https://peer.example/users/u{rng.randrange(5000)}",
                              f"{base}/users/{owner}/statuses/{rng.randrange(10**6)}", f"{base}/users/{owner}",
                              points, now - rng.randrange(30 * 86400))
            entries.append((idx, Note(build_receipt(receipt), sample.signatures).encode()))
            index.append((receipt.id, idx, kind, receipt.actor, receipt.object, receipt.beneficiary, points,
                          datetime.fromtimestamp(receipt.time, UTC), "counterparty"))
            idx += 1
        await conn.copy_records_to_table("rewards_log_entries", records=entries, columns=["idx", "leaf"])
        await conn.copy_records_to_table(
            "rewards_receipts", records=index,
            columns=["receipt_id", "idx", "kind", "actor_uri", "object_uri", "beneficiary_uri", "points",
                     "issued_at", "role"])
    for name in names[:10] if start == 0 else []:  # the busiest accounts minted once
        mint = Mint(f"{base}/users/{name}", 1, 100, 10, now - 86400)
        await conn.execute("INSERT INTO rewards_log_entries (idx, leaf) VALUES ($1, $2)", idx,
                           sign_note(build_mint(mint), [ours]))
        await conn.execute("INSERT INTO rewards_mints VALUES ($1, 1, $2, 100, 10, $3)", mint.account, idx,
                           datetime.fromtimestamp(mint.time, UTC))
        idx += 1
    await conn.execute("UPDATE rewards_log_seq SET next_index = $1", idx)
    await conn.execute("UPDATE rewards_log_state SET published_size = $1", idx)
    await conn.execute("ANALYZE")
    return time.perf_counter() - started


async def clone_accounts(conn: asyncpg.Connection, names: list[str]) -> None:
    """Local accounts named `names[1:]`, copies of `names[0]` (one RSA key made, not ten thousand)."""
    actor = dict(await conn.fetchrow("SELECT * FROM actors WHERE username = $1", names[0]))
    local = dict(await conn.fetchrow("SELECT * FROM local_accounts WHERE actor_id = $1", actor["id"]))
    columns = [c for c in actor if c != "id"]
    first = names[0]
    for name in names[1:]:
        values = [v.replace(f"/{first}", f"/{name}") if isinstance(v, str) and c != "username" else
                  (name if c == "username" else v) for c, v in ((c, actor[c]) for c in columns)]
        new_id = await conn.fetchval(
            f"INSERT INTO actors ({', '.join(columns)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(columns)))})"
            " RETURNING id", *values)
        await conn.execute("INSERT INTO local_accounts (actor_id, private_key_pem, role) VALUES ($1, $2, 'user')",
                           new_id, local["private_key_pem"])


async def saver_round(saver: FoldSaver, conn: asyncpg.Connection, settings) -> tuple[float, float]:
    """One round of the fold saver: its seconds, and the longest the event loop waited meanwhile."""
    pauses = [0.0]
    done = asyncio.Event()

    async def tick() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            pauses[0] = max(pauses[0], now - last)
            last = now

    ticker = asyncio.create_task(tick())
    started = time.perf_counter()
    await saver.round(conn, settings)
    took = time.perf_counter() - started
    done.set()
    await ticker
    return took, pauses[0]


def report(name: str, values: list[float]) -> None:
    print(f"{name}: p50 {percentile(values, .5) * 1000:.2f} ms, p99 {percentile(values, .99) * 1000:.2f} ms "
          f"({len(values)} queries)")


async def main(admin: str, count: int, queries: int, accounts: int) -> None:
    db = await create_database(admin)
    port = free_port()
    settings = load_settings(environ={
        "FEDSERVER_INSTANCE__DOMAIN": f"127.0.0.1:{port}", "FEDSERVER_INSTANCE__SCHEME": "http",
        "FEDSERVER_DATABASE__URL": db, "FEDSERVER_STORAGE__DATA_DIR": tempfile.mkdtemp(prefix="balance-bench-"),
    })
    pool = await asyncpg.create_pool(db, min_size=1, max_size=4, init=init_connection)
    runner = None
    try:
        names = [f"maker{n}" for n in range(accounts)]
        await create_account(pool, settings, validate_new_account(username=names[0]))
        async with pool.acquire() as conn:
            await clone_accounts(conn, names)
        async with pool.acquire() as conn:
            built = await build(conn, settings.base_url, names, count)
            busiest = await conn.fetchval("SELECT count(*) FROM rewards_receipts WHERE beneficiary_uri = $1",
                                          f"{settings.base_url}/users/{names[0]}")
        print(f"built {count:,} receipts for {accounts:,} accounts in {built:.1f} s; the busiest account has "
              f"{busiest:,} receipts, the median about {count // accounts:,}")
        ctx = await load_context(pool, settings)
        settle_garbage_collector()  # as `fedserver run` does once it has started
        rng = random.Random(3)
        asked = rng.choices(names, _weights(accounts), k=queries)
        first = list(dict.fromkeys([names[0], *asked]))
        async with pool.acquire() as conn:

            async def timed(who: list[str]) -> list[float]:
                out = []
                for name in who:
                    started = time.perf_counter()
                    await balance_document(conn, ctx, name)
                    out.append(time.perf_counter() - started)
                return out

            saver = FoldSaver()
            saving, pause = await saver_round(saver, conn, settings)
            saved = await conn.fetchrow("SELECT count(*) AS n, coalesce(sum(length(state)), 0) AS bytes, "
                                        "coalesce(max(length(state)), 0) AS most FROM reward_balance_folds")
            print(f"fold saver, first round over the whole log: {saved['n']:,} accounts saved in {saving:.1f} s, "
                  f"{saved['bytes'] / 1e6:.1f} MB (the busiest account's: {saved['most'] / 1e3:.0f} kB); "
                  f"longest event-loop pause {pause * 1000:.0f} ms")
            cold = await timed(first)
            report(f"server side, first query of each account, nothing in memory ({len(first)} accounts)", cold)
            print(f"  the busiest account's first query: {cold[0] * 1000:.1f} ms")
            others = rng.sample(sorted(set(names) - set(first)), min(queries, accounts - len(first)))
            report(f"server side, first query of accounts never asked before, drawn uniformly ({len(others)})",
                   await timed(others))
            report("server side, later queries, accounts weighted like the receipts", await timed(asked))
            report(f"server side, later queries of the busiest account ({busiest:,} receipts)",
                   await timed([names[0]] * (queries // 10)))
            size = await conn.fetchval("SELECT next_index FROM rewards_log_seq")
            more = max(1, count // 100)
            await build(conn, settings.base_url, names, more, start=size)
            BALANCES.clear()  # a restart: nothing in memory, the saved folds (now behind the log) remain
            settle_garbage_collector()
            restarted = await timed(first)
            report(f"server side, first query of each account after a restart, saved folds {more:,} receipts "
                   f"behind ({len(first)} accounts)", restarted)
            print(f"  the busiest account's first query after the restart: {restarted[0] * 1000:.1f} ms")
            report("server side, later queries after the restart, weighted", await timed(asked))
            saving, pause = await saver_round(saver, conn, settings)
            print(f"fold saver, next round ({more:,} receipts published since): {saving:.2f} s; "
                  f"longest event-loop pause {pause * 1000:.0f} ms")
        runner = web.AppRunner(create_app(settings, pool), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.sleep(0.5)  # the rewards context loads at start-up (this process folded them already)
        out = []
        async with aiohttp.ClientSession() as session:
            for name in asked:
                started = time.perf_counter()
                async with session.get(f"{settings.base_url}/rewards/balance/{name}") as response:
                    assert response.status == 200, await response.text()
                    await response.read()
                out.append(time.perf_counter() - started)
        report("HTTP GET /rewards/balance/<acct>, later queries, weighted", out)
        print("target: p99 < 5 ms at 10^6 receipts")
    finally:
        if runner is not None:
            await runner.cleanup()
        await pool.close()
        await drop_database(admin, db)
        shutil.rmtree(settings.storage.data_dir, ignore_errors=True)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    q = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    a = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000
    with database_server() as admin_url:
        asyncio.run(main(admin_url, n, q, a))
