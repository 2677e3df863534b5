"""The one durable job mechanism on real PostgreSQL: leases, order per key, wake-up, retries, pruning."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace

import asyncpg

from fedserver.db import create_pool, init_connection
from fedserver.jobs import RETRY, JobWorker, Outcome, WorkerOptions
from fedserver.jobs.janitor import prune_queues
from fedserver.repo import jobs
from fedserver.repo.deliveries import DELIVERIES, prune_bodies
from fedserver.repo.inbox import INBOX
from rewards.logstore import LOG_LEADER_LOCK, take_leader_lock

DELIVERY_LIKE = replace(INBOX, sender=None)  # the inbox table without the one-worker-per-sender rule
from tests.support.receivers import wait_for


async def _items(pool, senders: list[str]) -> list[int]:
    """Queue one inbox item per entry of `senders` (in that order); their ids."""
    async with pool.acquire() as conn:
        return [await conn.fetchval(
            """INSERT INTO inbox_items (activity_uri, activity_type, actor_uri, body)
               VALUES ($1, 'Note', $2, '{}'::jsonb) RETURNING id""", f"urn:job:{n}", sender)
            for n, sender in enumerate(senders)]


async def _row(pool, item_id: int):
    return await pool.fetchrow("SELECT state, attempts, last_error, last_status, locked_until, next_attempt_at "
                               "FROM inbox_items WHERE id = $1", item_id)


async def test_a_claimed_row_is_leased_to_one_worker_only(pool):
    await _items(pool, [f"s{n}" for n in range(10)])
    async with pool.acquire() as one, pool.acquire() as two, one.transaction(), two.transaction():
        first = await jobs.claim(one, DELIVERY_LIKE, 6)
        second = await jobs.claim(two, DELIVERY_LIKE, 6)  # skips the rows the first transaction holds
    assert len(first) == 6 and len(second) == 4 and not {j.id for j in first} & {j.id for j in second}
    assert [j.id for j in first] == sorted(j.id for j in first)  # in claim order
    assert all(j.attempts == 1 and j.lease is not None for j in first + second)
    async with pool.acquire() as conn:
        assert await jobs.claim(conn, INBOX, 10) == []  # all leased now


async def test_one_senders_rows_are_leased_to_one_worker_at_a_time(pool):
    ids = await _items(pool, ["a", "a", "b", "a", "c", "b"])
    async with pool.acquire() as conn:
        first = await jobs.claim(conn, INBOX, 2, worker="one")  # a's first two rows
        assert [j.id for j in first] == ids[:2]
        # Another worker skips a (whose rows `one` holds), not b or c.
        assert [j.id for j in await jobs.claim(conn, INBOX, 10, worker="two")] == [ids[2], ids[4], ids[5]]
        # The holder itself may take a's later rows (it runs them after its earlier ones).
        assert [j.id for j in await jobs.claim(conn, INBOX, 10, worker="one")] == [ids[3]]
        for job in first:
            assert await jobs.finish(conn, INBOX, job, "done", error=None, status=None)
        assert await jobs.claim(conn, INBOX, 10, worker="three") == []  # a's row 3 is still held by `one`
    short = replace(INBOX, lease_seconds=0.05)
    async with pool.acquire() as conn:
        await jobs.claim(conn, INBOX, 10, worker="one")  # clear the way: `one` holds every row so far
        await conn.execute("""INSERT INTO inbox_items (activity_uri, activity_type, actor_uri, body)
                              VALUES ('urn:job:d', 'Note', 'd', '{}'::jsonb)""")
        (held,) = await jobs.claim(conn, short, 1, worker="one")
        await asyncio.sleep(0.1)  # a lease that ran out (its worker died) holds nothing back
        (taken,) = await jobs.claim(conn, short, 1, worker="two")
        assert taken.id == held.id


async def test_two_workers_never_run_one_senders_jobs_side_by_side_and_keep_their_order(pool):
    senders = [random.choice("abcdefghijkl") for _ in range(240)]  # more senders than one worker holds
    ids = await _items(pool, senders)
    ran: list[tuple[str, int]] = []
    running: dict[str, str] = {}
    clashes = []

    def worker(name: str) -> JobWorker:
        async def run(job):
            sender = job["actor_uri"]
            if sender in running:
                clashes.append((sender, running[sender], name))
            running[sender] = name
            await asyncio.sleep(random.uniform(0, 0.004))
            ran.append((sender, job.id))
            del running[sender]
            return Outcome("done")
        return JobWorker(pool, INBOX, run, WorkerOptions(concurrency=8, refill_at=1,
                                                          ordering_key=lambda job: job["actor_uri"]))

    workers = [worker("one"), worker("two")]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in workers]
    await wait_for(lambda: len(ran) == len(ids), 30, "every job to run")
    stop.set()
    await asyncio.gather(*tasks)
    assert clashes == []
    for sender in set(senders):
        assert [i for s, i in ran if s == sender] == [i for i, s in zip(ids, senders) if s == sender]
    assert await pool.fetchval("SELECT count(DISTINCT claimed_by) FROM inbox_items") == 2  # both took rows


async def test_an_outcome_is_written_only_while_the_lease_is_held(pool):
    (item,) = await _items(pool, ["a"])
    short = replace(INBOX, lease_seconds=0.05)
    async with pool.acquire() as conn:
        (first,) = await jobs.claim(conn, short, 1)
        await asyncio.sleep(0.1)  # the lease runs out; another worker takes the row over
        (second,) = await jobs.claim(conn, short, 1)
        assert second.id == first.id and second.attempts == 2
        assert not await jobs.finish(conn, INBOX, first, "done", error=None, status=None)
        assert not await jobs.reschedule(conn, INBOX, first, 60, error="late", status=None)
        assert await jobs.finish(conn, INBOX, second, "ignored", error="why", status=None)
    row = await _row(pool, item)
    assert (row["state"], row["attempts"], row["last_error"], row["locked_until"]) == ("ignored", 2, "why", None)


async def test_outcomes_that_end_together_are_written_in_one_statement_each_with_its_own_lease(pool, db_url):
    ids = await _items(pool, ["a", "b", "c", "d"])
    async with pool.acquire() as conn:
        claimed = await jobs.claim(conn, INBOX, 4)
        await conn.execute("UPDATE inbox_items SET locked_until = locked_until + interval '1 hour' WHERE id = $1",
                           ids[3])  # taken over by another worker meanwhile: its old lease no longer holds
    outcomes = {ids[0]: Outcome("done"), ids[1]: Outcome("ignored", "not for us"),
                ids[2]: Outcome(RETRY, "peer down", 503), ids[3]: Outcome("done")}
    updates = []

    async def watched(conn):
        await init_connection(conn)
        conn.add_query_logger(lambda record: updates.append(record.query)
                              if record.query.lstrip().startswith("UPDATE inbox_items") else None)

    async with asyncpg.create_pool(db_url, min_size=1, max_size=2, init=watched) as own:
        worker = JobWorker(own, INBOX, lambda job: asyncio.sleep(0, outcomes[job.id]))
        recorded = await asyncio.gather(*(worker.attempt(job) for job in claimed))
    assert [o.state for o in recorded] == ["done", "ignored", RETRY, "done"] and len(updates) == 1
    rows = [await _row(pool, i) for i in ids]
    assert [(r["state"], r["last_error"], r["last_status"]) for r in rows] == [
        ("done", None, None), ("ignored", "not for us", None), ("queued", "peer down", 503), ("queued", None, None)]
    assert rows[2]["locked_until"] is None and await pool.fetchval(  # retried on the schedule: 16 s or more
        "SELECT next_attempt_at > now() + interval '10 seconds' FROM inbox_items WHERE id = $1", ids[2])
    assert rows[3]["locked_until"] is not None  # the other worker's lease is untouched


async def test_a_rescheduled_row_waits_until_it_is_due(pool):
    (item,) = await _items(pool, ["a"])
    async with pool.acquire() as conn:
        (job,) = await jobs.claim(conn, INBOX, 1)
        assert await jobs.reschedule(conn, INBOX, job, 3600, error="peer down", status=503)
        assert await jobs.claim(conn, INBOX, 1) == []
        assert [j.id for j in await jobs.claim(conn, INBOX, 1, due=False)] == [item]
    row = await _row(pool, item)
    assert (row["state"], row["last_error"], row["last_status"]) == ("queued", "peer down", 503)


async def test_one_senders_jobs_run_in_claim_order_and_senders_in_parallel(pool):
    senders = [random.choice("abc") for _ in range(60)]
    ids = await _items(pool, senders)
    ran: list[tuple[str, int]] = []
    running: set[str] = set()
    overlap = []

    async def run(job):
        sender = job["actor_uri"]
        assert sender not in running, "two jobs of one sender ran at once"
        running.add(sender)
        overlap.append(len(running))
        await asyncio.sleep(random.uniform(0, 0.01))
        ran.append((sender, job.id))
        running.discard(sender)
        return Outcome("done")

    worker = JobWorker(pool, INBOX, run, WorkerOptions(concurrency=16, ordering_key=lambda job: job["actor_uri"]))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_for(lambda: len(ran) == len(ids), 20, "every job to run")
    stop.set()
    await task
    for sender in "abc":
        assert [i for s, i in ran if s == sender] == [i for i, s in zip(ids, senders) if s == sender]
    assert max(overlap) > 1  # different senders did run side by side
    assert await pool.fetchval("SELECT count(*) FROM inbox_items WHERE state = 'done'") == len(ids)


async def test_a_new_job_wakes_an_idle_worker_by_notify(pool):
    ran = []

    async def run(job):
        ran.append(job.id)
        return Outcome("done")

    worker = JobWorker(pool, INBOX, run, WorkerOptions(poll_seconds=3600))  # polling would never find it
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0.2)  # idle, listening
    async with pool.acquire() as conn:
        item = await conn.fetchval(
            """INSERT INTO inbox_items (activity_uri, activity_type, actor_uri, body)
               VALUES ('urn:job:woken', 'Note', 'a', '{}'::jsonb) RETURNING id""")
        await conn.execute(f"NOTIFY {INBOX.channel}")
    await wait_for(lambda: ran == [item], 10, "the NOTIFY to wake the worker")
    stop.set()
    await task


async def test_retries_follow_the_schedule_then_fail_and_a_crash_leaves_the_lease(pool):
    first, crashing = await _items(pool, ["a", "b"])

    async def run(job):
        if job.id == crashing:
            raise RuntimeError("a bug")
        return Outcome(RETRY, "peer down", 503)

    worker = JobWorker(pool, INBOX, run, rng=random.Random(0))
    async with pool.acquire() as conn:
        claimed = await jobs.claim(conn, INBOX, 2)
    outcomes = [await worker.attempt(job) for job in claimed]
    assert outcomes[0].retry and outcomes[1] is None
    row = await _row(pool, first)
    waited = (row["next_attempt_at"] - (await pool.fetchval("SELECT now()"))).total_seconds()
    assert row["state"] == "queued" and 10 < waited <= 16.5  # the first retry: 16 s (1**4 + 15 + rand(0.5))
    crashed = await _row(pool, crashing)
    assert crashed["state"] == "queued" and crashed["locked_until"] is not None  # back when the lease ends
    await pool.execute("UPDATE inbox_items SET attempts = $2 - 1, next_attempt_at = now() WHERE id = $1",
                       first, INBOX.max_attempts)
    async with pool.acquire() as conn:
        (last,) = await jobs.claim(conn, INBOX, 1)
    assert (await worker.attempt(last)).state == "failed"
    row = await _row(pool, first)
    assert (row["state"], row["attempts"], row["last_error"]) == ("failed", INBOX.max_attempts, "peer down")


async def test_effects_are_written_with_the_outcome_or_not_at_all(pool):
    first, second = await _items(pool, ["a", "b"])

    async def run(job):
        async def effects(conn):
            await conn.execute("UPDATE inbox_items SET last_error = 'effect' WHERE id = $1", job.id)
            if job.id == second:
                raise RuntimeError("the effects fail")
        return Outcome("done", effects=effects)

    worker = JobWorker(pool, INBOX, run)
    async with pool.acquire() as conn:
        claimed = await jobs.claim(conn, INBOX, 2)
    await worker.attempt(claimed[0])
    assert await worker.attempt(claimed[1]) is None  # logged; the lease brings the job back
    assert (await _row(pool, first))["state"] == "done" and (await _row(pool, first))["last_error"] == "effect"
    assert (await _row(pool, second))["state"] == "queued" and (await _row(pool, second))["last_error"] is None


async def test_pruning_deletes_old_finished_rows_and_unused_bodies_only(pool):
    old, recent, queued = await _items(pool, ["a", "b", "c"])
    await pool.execute("""UPDATE inbox_items SET state = 'done', finished_at = now() - interval '20 days'
                          WHERE id = $1""", old)
    await pool.execute("UPDATE inbox_items SET state = 'done', finished_at = now() - interval '2 days' WHERE id = $1",
                       recent)
    await pool.execute("UPDATE inbox_items SET next_attempt_at = now() - interval '30 days' WHERE id = $1", queued)
    actor = await pool.fetchval(
        """INSERT INTO actors (uri, is_local, username, domain, actor_type, inbox_uri, key_id, public_key_pem)
           VALUES ('https://r.example/u', false, 'u', 'r.example', 'Person', 'https://r.example/inbox', 'k', 'p')
           RETURNING id""")
    for name, age, state in (("gone", 20, "delivered"), ("kept", 20, "queued"), ("fresh", 1, "delivered")):
        body = await pool.fetchval(
            """INSERT INTO delivery_bodies (activity_uri, body, created_at)
               VALUES ($1, '{}'::jsonb, now() - make_interval(days => $2)) RETURNING id""", name, age)
        await pool.execute(
            """INSERT INTO deliveries (activity_uri, sender_id, inbox_uri, body_id, state, finished_at)
               VALUES ($1, $2, 'https://r.example/inbox', $3, $4,
                       CASE WHEN $4 <> 'queued' THEN now() - make_interval(days => $5) END)""",
            name, actor, body, state, age)
    deleted = await prune_queues(pool, [INBOX, DELIVERIES], [prune_bodies], 14 * 86400.0)
    assert deleted == {"inbox_items": 1, "deliveries": 1, "prune_bodies": 1}
    assert {r["id"] for r in await pool.fetch("SELECT id FROM inbox_items")} == {recent, queued}
    kept = {r["activity_uri"] for r in await pool.fetch("SELECT activity_uri FROM delivery_bodies")}
    assert kept == {"kept", "fresh"}
    assert await prune_queues(pool, [INBOX, DELIVERIES], [prune_bodies], 14 * 86400.0) == {
        "inbox_items": 0, "deliveries": 0, "prune_bodies": 0}


async def test_the_pool_clears_a_lock_and_a_listen_but_leaves_plain_connections_as_they_are(settings):
    one = settings.model_copy(update={"database": settings.database.model_copy(
        update={"pool_min_size": 1, "pool_max_size": 1})})
    pool = await create_pool(settings.database.url, one)
    other = await asyncpg.connect(settings.database.url)
    try:
        async with pool.acquire() as conn:  # the leader left without unlocking (a crash, a cancellation)
            assert await take_leader_lock(conn)
            server_pid = conn.get_server_pid()
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", LOG_LEADER_LOCK)
        await other.execute("SELECT pg_advisory_unlock_all()")
        async with pool.acquire() as conn:  # the same session, with its lock gone
            assert conn.get_server_pid() == server_pid
            await conn.execute("SET application_name = 'kept'")
            await conn.execute("BEGIN")
            await conn.execute("CREATE TEMP TABLE left_open (x int)")
        async with pool.acquire() as conn:  # the open transaction was rolled back, nothing else reset
            assert conn.get_server_pid() == server_pid and not conn.is_in_transaction()
            assert await conn.fetchval("SELECT to_regclass('left_open')") is None
            assert await conn.fetchval("SHOW application_name") == "kept"
    finally:
        await other.close()
        await pool.close()



async def _batch_items(pool, rows: list[tuple[str, str]]) -> list[int]:
    """Queue one inbox item per (sender, kind), in that order; their ids."""
    async with pool.acquire() as conn:
        return [await conn.fetchval(
            """INSERT INTO inbox_items (activity_uri, activity_type, actor_uri, body)
               VALUES ($1, $2, $3, jsonb_build_object('kind', $2::text)) RETURNING id""",
            f"urn:job:{n}", kind, sender) for n, (sender, kind) in enumerate(rows)]


def _batching_worker(pool, ran: list, batches: list, *, poisoned: frozenset[int] = frozenset()) -> JobWorker:
    """A worker whose jobs of kind 'c' batch per sender; a batch holding a poisoned job raises as a whole."""

    async def run(job):
        ran.append(job.id)
        return Outcome("failed", "poisoned") if job.id in poisoned else Outcome("done")

    async def run_batch(batch, _prepared):
        batches.append([job.id for job in batch])
        if poisoned & {job.id for job in batch}:
            raise RuntimeError("one job of the batch cannot be done")
        ran.extend(job.id for job in batch)
        return [Outcome("done") for _ in batch]

    return JobWorker(pool, INBOX, run, WorkerOptions(
        concurrency=64, ordering_key=lambda job: job["actor_uri"],
        batch_key=lambda job: "c" if job["body"]["kind"] == "c" else None,
        run_batch=run_batch, max_batch=4))


def test_units_batch_jobs_of_one_batch_key_across_senders_keeping_each_senders_order():
    worker = _batching_worker(None, [], [])
    plan = ["ac", "ac", "bc", "ac", "ax", "ac", "bc", "ac", "ac", "cc", "bx", "bc", "cc"]
    jobs_ = [jobs.Job(n, 0, None, {"actor_uri": sender, "body": {"kind": kind}})
             for n, (sender, kind) in enumerate(plan)]
    units = [[job.id for job in unit] for unit in worker.units(jobs_)]
    # a's, b's and c's Creates share batches (at most max_batch jobs each); a job that does not
    # batch (4: a's x) ends a's part of the batch before it, so a's next Creates start a new one,
    # which b's and c's later Creates join; b's Create after b's x (10) cannot join a batch
    # that runs before that x.
    assert units == [[0, 1, 2, 3], [4], [5, 6, 7, 8], [9], [10], [11, 12]]
    assert len({jobs_[i]["actor_uri"] for i in units[0]}) == 2


async def test_claimed_jobs_run_in_batches_and_a_batch_that_raises_runs_each_job_alone_in_order(pool):
    rows = [("a", "c")] * 3 + [("a", "x")] + [("a", "c")] * 6 + [("b", "c")] * 2
    ids = await _batch_items(pool, rows)
    poisoned = frozenset({ids[5]})
    ran, batches = [], []
    worker = _batching_worker(pool, ran, batches, poisoned=poisoned)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_for(lambda: len(set(ran)) == len(ids), 20, "every job to run")
    stop.set()
    await task
    # a's x ends a's first batch; b's Creates join a's last batch (at most four jobs each).
    assert batches == [ids[0:3], ids[4:8], ids[8:12]]
    # The batch with the poisoned job ran again job by job, in order; the others did not.
    assert [i for i in ran if i in ids[:10]] == ids[:10] and ran[-4:] == ids[8:12]
    states = {r["id"]: r["state"] for r in await pool.fetch("SELECT id, state FROM inbox_items")}
    assert states[ids[5]] == "failed" and all(states[i] == "done" for i in ids if i != ids[5])


async def test_a_batch_is_prepared_ahead_while_the_earlier_batch_of_its_key_runs_and_runs_only_after_it(pool):
    ids = await _batch_items(pool, [("a", "c")] * 8)
    events: list[str] = []
    first_may_end = asyncio.Event()

    async def prepare(batch):
        events.append(f"prepare {batch[0].id}")
        if batch[0].id == ids[4]:
            first_may_end.set()  # the second batch was prepared while the first still ran
        return f"made for {batch[0].id}"

    async def run_batch(batch, prepared):
        assert prepared == f"made for {batch[0].id}"
        events.append(f"run {batch[0].id}")
        if batch[0].id == ids[0]:
            await asyncio.wait_for(first_may_end.wait(), 10)
        events.append(f"end {batch[0].id}")
        return [Outcome("done") for _ in batch]

    worker = JobWorker(pool, INBOX, lambda job: Outcome("done"), WorkerOptions(
        concurrency=64, ordering_key=lambda job: job["actor_uri"], batch_key=lambda job: "c",
        run_batch=run_batch, prepare_batch=prepare, max_batch=4))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_for(lambda: f"end {ids[4]}" in events, 20, "both batches to end")
    stop.set()
    await task
    assert events.index(f"prepare {ids[4]}") < events.index(f"end {ids[0]}") < events.index(f"run {ids[4]}")


async def test_a_batch_whose_preparing_fails_runs_each_job_alone_in_order(pool):
    ids = await _batch_items(pool, [("a", "c")] * 3)
    ran: list[int] = []

    async def prepare(batch):
        raise ValueError("cannot be prepared")

    async def run(job):
        ran.append(job.id)
        return Outcome("done")

    async def run_batch(batch, prepared):
        raise AssertionError("a batch that could not be prepared must not run as a batch")

    worker = JobWorker(pool, INBOX, run, WorkerOptions(
        concurrency=64, ordering_key=lambda job: job["actor_uri"], batch_key=lambda job: "c",
        run_batch=run_batch, prepare_batch=prepare, max_batch=4))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_for(lambda: len(ran) == 3, 20, "each job to run alone")
    stop.set()
    await task
    assert ran == ids
    assert {r["state"] for r in await pool.fetch("SELECT state FROM inbox_items")} == {"done"}


async def test_a_senders_next_batch_starts_once_the_batch_before_is_done_not_once_its_outcomes_are_written(pool):
    ids = await _batch_items(pool, [("a", "c")] * 8)
    events: list[str] = []
    locker = await pool.acquire()
    held = {"lock": locker.transaction(), "open": False}

    async def release() -> None:
        if held["open"]:
            held["open"] = False
            await held["lock"].commit()

    async def run_batch(batch, _prepared):
        events.append(f"run {batch[0].id}")
        if batch[0].id == ids[0]:  # its outcomes cannot be written while another transaction holds its rows
            await held["lock"].start()
            held["open"] = True
            await locker.execute("SELECT 1 FROM inbox_items WHERE id = ANY($1::bigint[]) FOR UPDATE", ids[:4])
        else:
            events.append(f"first batch {await pool.fetchval('SELECT state FROM inbox_items WHERE id = $1', ids[0])}")
            await release()
        return [Outcome("done") for _ in batch]

    async def all_done() -> bool:
        states = await pool.fetch("SELECT state FROM inbox_items WHERE id = ANY($1::bigint[])", ids)
        return {row["state"] for row in states} == {"done"}

    worker = JobWorker(pool, INBOX, lambda job: Outcome("done"), WorkerOptions(
        concurrency=64, ordering_key=lambda job: job["actor_uri"], batch_key=lambda job: "c",
        run_batch=run_batch, max_batch=4))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await wait_for(lambda: f"run {ids[4]}" in events, 10, "the second batch to run while the first's outcomes wait")
        await wait_for(all_done, 10, "every outcome to be written")
    finally:
        await release()
        stop.set()
        await task
        await pool.release(locker)
    # The second batch ran after the first had run, while the first's rows were still not marked done.
    assert events == [f"run {ids[0]}", f"run {ids[4]}", "first batch queued"]
