"""Faults to survive, on real `fedserver run` processes: a peer down for days, and slow or hostile peers.

A peer down for days: a peer refuses connections, then answers 503, while a local account posts and
the server is restarted; `[federation] retry_delay_scale` shrinks the published schedule
(`attempt**4 + 15 + rand(0.5 * attempt**4)` seconds after failed attempt `attempt`) so that a day of
it passes in seconds. The deliveries table, polled every few milliseconds, shows when each attempt
started and the wait it recorded; when the peer returns, it gets every post once, in posting order.
At full scale, an attempt after days of failures waits its published hours.

Slow or hostile peers: signed inbox POSTs whose keyIds lead to peers that trickle their answer a
byte a second, send a body that never ends, redirect in a loop, or declare 10 GB and trickle; and a
follower's inbox that answers a byte a second. Each fetch or delivery ends at the client's total
timeout or at a limit, the server's memory stays flat, and meanwhile a well-behaved peer's signed
POST is answered at once and a post reaches a well-behaved follower at once.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from fedserver.federation.delivery import MAX_ATTEMPTS
from fedserver.federation.remote import MAX_KEY_FETCHES_PER_HOST
from fedserver.signatures import generate_rsa_keypair
from tests.support.http_peers import ACTIVITY_JSON, Peer, serve
from tests.support.instance import Instance, free_port, instance_env
from tests.support.receivers import Receiver, add_remote_followers, wait_for
from tests.support.remote import RemoteActorKeys, RemoteServer, signed_post

pytestmark = pytest.mark.slow

SCALE = 2e-5  # a second of the test is 50,000 s (about 14 hours) of the retry schedule
WORKER_POLL = 1.0  # the delivery worker looks for due rows at least every second (fedserver/federation/delivery.py)
# HttpClient's total deadline per request: `[federation] request_timeout_seconds`, 30 s by default, set shorter
# here so the hostile peers are cut off within seconds (the same code path at any length).
TOTAL_TIMEOUT = 5.0
MiB, GiB = 1024**2, 1024**3
BODY_LIMIT = 1 * MiB  # the documented cap on a fetched body (Mastodon's MAX_JSON_SIZE)


def _bounds(attempt: int, scale: float = 1.0) -> tuple[float, float]:
    """The published wait after failed attempt `attempt` (Mastodon's `attempt**4 + 15 + rand(0.5 * attempt**4)`
    seconds, README and fedserver/jobs/schedule.py), least and greatest, times `scale`."""
    return (attempt**4 + 15) * scale, (1.5 * attempt**4 + 15) * scale


@pytest.fixture
def make_instance(db_url, tmp_path):
    """Instances (not started) on the test database, with `[federation]` keys set; killed afterwards."""
    made: list[Instance] = []

    def make(**federation: object) -> Instance:
        port = free_port()
        extra = {f"FEDSERVER_FEDERATION__{key.upper()}": str(value) for key, value in federation.items()}
        extra["FEDSERVER_LOGGING__LEVEL"] = "warning"
        env = instance_env(database_url=db_url, data_dir=tmp_path / "data", port=port, extra=extra)
        made.append(Instance(port=port, env=env, cwd=tmp_path, log_path=tmp_path / "server.log"))
        return made[-1]

    yield make
    for instance in made:
        instance.kill()


async def _run(instance: Instance, *args: str) -> str:
    """Run a `fedserver` command; its last line of output."""
    result = await asyncio.to_thread(instance.command, *args)
    assert result.returncode == 0, f"fedserver {' '.join(args)}: {result.stderr}"
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


async def _post(instance: Instance, text: str) -> str:
    """alice posts `text`; the id of its Create activity."""
    status = await _run(instance, "post", "alice", text)
    return status.replace("/statuses/", "/activities/create/")


async def _alice(pool) -> dict:
    async with pool.acquire() as conn:
        return dict(await conn.fetchrow("SELECT id, key_id, public_key_pem FROM actors WHERE username = 'alice'"))


# --- A peer down for days -------------------------------------------------------------------------


@dataclass
class ReturningPeer(Receiver):
    """A receiver whose address is fixed before it listens: until it starts, connections are refused.

    It answers `answer` (503 while it is sick, then 202) and keeps what it answered to each hit.
    """

    port: int = field(default_factory=free_port)
    answer: int = 503
    answered: dict[int, int] = field(default_factory=dict)  # index in hits -> status

    async def start(self) -> Self:
        self.script = self._answer
        app = web.Application()
        app.router.add_post("/users/{name}/inbox", self._inbox)
        self.server = TestServer(app, host="127.0.0.1", port=self.port)
        await self.server.start_server()
        return self

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _answer(self, path: str, earlier: int) -> tuple[int, dict[str, str]]:
        self.answered[earlier] = self.answer
        return self.answer, {}

    def accepted(self) -> list[tuple[str, str | None]]:
        """(inbox path, activity id) of the POSTs answered 2xx, in arrival order."""
        return [(hit.path, hit.activity_id) for i, hit in enumerate(self.hits) if self.answered.get(i) == 202]


@dataclass
class Row:
    """What polling the deliveries table showed of one delivery.

    Attempt k was claimed after `since[k]` (the start of the last poll that did not show it) and by
    `started[k]` (the poll that did); its outcome, and so the wait it set, was written after the claim.
    """

    inbox: str
    activity: str
    since: dict[int, float] = field(default_factory=dict)
    started: dict[int, float] = field(default_factory=dict)
    waits: dict[int, tuple[float, float]] = field(default_factory=dict)  # attempt -> (wait left, seconds since claim)
    last: tuple[int, bool] | None = None  # (attempts, leased) at the previous poll
    state: str = "queued"

    @property
    def attempts(self) -> int:
        return max(self.started, default=0)


class DeliveryWatch:
    """Polls the deliveries table every `interval` seconds and keeps each attempt's start and recorded wait."""

    def __init__(self, pool, interval: float = 0.02) -> None:
        self.pool, self.interval = pool, interval
        self.rows: dict[int, Row] = {}
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def attempts(self, activity: str) -> int:
        """The most attempts made so far on any delivery of one activity."""
        return max((row.attempts for row in self.rows.values() if row.activity == activity), default=0)

    async def _poll(self) -> None:
        previous = time.monotonic()
        while True:
            began = time.monotonic()
            async with self.pool.acquire() as conn:
                records = await conn.fetch(
                    """SELECT id, inbox_uri, activity_uri, attempts, state, locked_until IS NOT NULL AS leased,
                              extract(epoch FROM next_attempt_at - clock_timestamp())::float8 AS wait
                       FROM deliveries""")
            seen = time.monotonic()
            for record in records:
                self._note(record, seen, previous)
            previous = began
            await asyncio.sleep(self.interval)

    def _note(self, record, seen: float, previous: float) -> None:
        row = self.rows.setdefault(record["id"], Row(record["inbox_uri"], record["activity_uri"]))
        attempt, leased = record["attempts"], record["leased"]
        row.state = record["state"]
        if attempt and attempt not in row.started:
            row.since[attempt], row.started[attempt] = previous, seen
        # Read a wait once, at the first poll after the attempt's outcome was written: next_attempt_at is the
        # writing transaction's now() plus the wait, and that transaction began after the claim.
        written = row.state == "queued" and attempt and not leased and row.last != (attempt, False)
        if written and attempt not in row.waits:
            row.waits[attempt] = (record["wait"], seen - row.since[attempt])
        row.last = (attempt, leased)


async def test_a_peer_down_for_days_gets_every_post_once_in_order_after_backing_off_on_the_schedule(
        make_instance, pool):
    instance = make_instance(retry_delay_scale=SCALE, delivery_lease_seconds=3)
    await _run(instance, "account", "create", "alice")
    alice = await _alice(pool)
    peer = ReturningPeer(keys={alice["key_id"]: alice["public_key_pem"]})
    async with pool.acquire() as conn:  # two followers with their own inboxes on a server that is down
        await add_remote_followers(conn, alice["id"], peer, 2, shared_inbox=False)
    downtime: list[tuple[float, float]] = []
    posts: list[str] = []
    try:
        async with DeliveryWatch(pool) as watch:
            await asyncio.to_thread(instance.start)
            began = time.monotonic()
            posts.append(await _post(instance, "가마 문을 열었습니다"))
            first = lambda: watch.attempts(posts[0])  # the first post's deliveries
            await wait_for(lambda: first() >= 5, 30, "five refused attempts")
            posts.append(await _post(instance, "두 번째 가마"))
            await wait_for(lambda: first() >= 8, 30, "eight refused attempts")
            stopped = time.monotonic()
            assert await asyncio.to_thread(instance.terminate) == 0, instance.log()
            await asyncio.to_thread(instance.start)
            downtime.append((stopped, time.monotonic()))
            posts.append(await _post(instance, "세 번째 가마"))
            await wait_for(lambda: first() >= 11, 30, "eleven refused attempts")
            await peer.start()  # back, but sick: 503
            # An attempt counts from its claim, before its POST: wait for the peer to have answered one with 503.
            await wait_for(lambda: first() >= 13 and 503 in peer.answered.values(), 30, "attempts answered 503")
            peer.answer = 202  # two or more attempts before the last (16th): nothing is lost yet
            recovered = time.monotonic()
            await wait_for(lambda: len(watch.rows) == 6 and all(r.state == "delivered" for r in watch.rows.values()),
                           30, "every delivery after the peer came back")
            delivered = time.monotonic()
    finally:
        await peer.close()

    rows = list(watch.rows.values())
    waited = max(sum(wait for wait, _ in row.waits.values()) for row in rows) / SCALE
    print(f"\nthe first post's deliveries failed up to {max(row.attempts for row in rows) - 1} attempts over "
          f"{waited / 86400:.2f} days of the schedule ({recovered - began:.1f} s); all delivered "
          f"{delivered - recovered:.1f} s after the peer recovered")
    _check_schedule(rows, downtime)
    assert 503 in peer.answered.values(), "the peer never answered 503"
    expected = {(f"/users/f{i}/inbox", activity) for i in range(2) for activity in posts}
    accepted = peer.accepted()
    assert set(accepted) == expected, f"lost: {sorted(expected - set(accepted))}"
    assert len(accepted) == len(expected), f"delivered twice: {collections.Counter(accepted).most_common(2)}"
    assert all(hit.verified for hit in peer.hits)
    assert {row.state for row in rows} == {"delivered"}
    # A peer applies activities in the order they arrive (an Update must not come before its Create).
    orders = {f"f{i}": [posts.index(activity) + 1 for path, activity in accepted if path == f"/users/f{i}/inbox"]
              for i in range(2)}
    print(f"posts 1, 2, 3 arrived in the order {orders}")
    assert orders == {"f0": [1, 2, 3], "f1": [1, 2, 3]}, f"not in posting order: {orders}"
    assert instance.terminate() == 0


def _check_schedule(rows, downtime: list[tuple[float, float]]) -> None:
    """Each recorded wait is the published one (times SCALE); each next attempt starts no sooner, and (unless
    the server was down in between) no later than one worker poll after."""
    waits: list[tuple[Row, int, float, float]] = []  # row, attempt, wait left when read, seconds since the claim
    gaps: list[tuple[Row, int, float, float, bool]] = []  # row, attempt, longest and shortest gap, server down between
    for row in rows:
        waits += [(row, attempt, wait, stale) for attempt, (wait, stale) in row.waits.items()]
        for attempt, at in row.started.items():
            if attempt + 1 in row.started:  # the gap between the claims: at most `longest`, at least `shortest`
                longest = row.started[attempt + 1] - row.since[attempt]
                shortest = row.since[attempt + 1] - at
                down = any(row.since[attempt] < up and down < row.started[attempt + 1] for down, up in downtime)
                gaps.append((row, attempt, longest, shortest, down))
    for attempt in sorted({w[1] for w in waits} | {g[1] for g in gaps}):
        low, high = _bounds(attempt, SCALE)
        seen = sorted(f"{longest:.2f}{'*' if down else ''}" for _, a, longest, _, down in gaps if a == attempt)
        recorded = sorted(f"{wait:.3f}" for _, a, wait, _ in waits if a == attempt)
        print(f"after attempt {attempt:2}: schedule {low:6.3f} to {high:6.3f} s; recorded waits {' '.join(recorded)}; "
              f"next attempt after {' '.join(seen)} s")
    for row, attempt, wait, since_claim in waits:
        low, high = _bounds(attempt, SCALE)
        assert low <= wait + since_claim and wait <= high, (
            f"{row.inbox} {row.activity}: after attempt {attempt} the row waits {wait:.3f} s "
            f"({since_claim:.3f} s after the claim), not {low:.3f} to {high:.3f} s")
    for row, attempt, longest, shortest, down in gaps:
        low, high = _bounds(attempt, SCALE)
        assert longest >= low, f"attempt {attempt + 1} came {longest:.3f} s after attempt {attempt}, before {low:.3f}"
        if not down:  # * above: the server was stopped in between
            assert shortest <= high + WORKER_POLL + 0.5, (
                f"attempt {attempt + 1} came {shortest:.2f} s after attempt {attempt}, not {high:.2f} s + a poll")


async def test_after_days_of_failures_a_delivery_waits_hours_as_published_until_its_last_attempt(
        make_instance, pool):
    instance = make_instance()  # the full schedule: retry_delay_scale 1.0
    await _run(instance, "account", "create", "alice")
    alice = await _alice(pool)
    sick = ReturningPeer(keys={alice["key_id"]: alice["public_key_pem"]})
    await sick.start()
    late = list(range(7, MAX_ATTEMPTS))  # attempts already failed: from ~1.5 hours of failures to ~2.5 days
    try:
        async with pool.acquire() as conn:
            await add_remote_followers(conn, alice["id"], sick, len(late), shared_inbox=False)
        await _post(instance, "며칠째 닫힌 서버에")  # queued while the server is not running
        async with pool.acquire() as conn:
            for i, failed in enumerate(late):
                await conn.execute("UPDATE deliveries SET attempts = $1 WHERE inbox_uri = $2",
                                   failed, f"{sick.base}/users/f{i}/inbox")
        await asyncio.to_thread(instance.start)
        await wait_for(lambda: len(sick.hits) >= len(late), 15, "one attempt per delivery")
        await wait_for(lambda: _recorded(pool, len(late)), 10, "the outcomes")
        rows = await _recorded(pool, len(late))
    finally:
        await sick.close()
    print()
    for row in rows:
        attempt = row["attempts"]
        if attempt == MAX_ATTEMPTS:
            assert row["state"] == "failed", f"attempt {attempt} is the last: {dict(row)}"
            print(f"attempt {attempt}: failed (the last)")
            continue
        low, high = _bounds(attempt)
        wait = row["wait"]
        print(f"attempt {attempt}: next in {wait / 3600:.2f} h (schedule {low / 3600:.2f} to {high / 3600:.2f} h)")
        assert row["state"] == "queued"
        assert low - 10 <= wait <= high, f"after attempt {attempt} the delivery waits {wait:.0f} s, not {low:.0f}+ s"
    assert sorted(row["attempts"] for row in rows) == [failed + 1 for failed in late]
    assert instance.terminate() == 0


async def _recorded(pool, count: int) -> list | None:
    """The deliveries once all `count` have an outcome recorded for their attempt, with the wait each has left."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT inbox_uri, attempts, state,
                      extract(epoch FROM next_attempt_at - clock_timestamp())::float8 AS wait
               FROM deliveries WHERE locked_until IS NULL AND (state <> 'queued' OR next_attempt_at > now())
               ORDER BY attempts""")
    return rows if len(rows) == count else None


# --- Slow or hostile peers ------------------------------------------------------------------------


@dataclass
class Stall:
    """One hostile answer: when it began, what it sent, and when the other side hung up."""

    began: float
    sent: int = 0
    ended: float | None = None

    @property
    def lasted(self) -> float:
        return (self.ended or time.monotonic()) - self.began


def _hostile(stalls: list[Stall], *, declared: int | None = None, rate: float | None = 1.0):
    """Handler: 200 as ActivityPub JSON, then a body that never ends: a byte every 1/`rate` seconds, or
    64 KiB chunks as fast as the client takes them (rate None); chunked unless a length is `declared`."""

    async def handler(request: web.Request) -> web.StreamResponse:
        stall = Stall(time.monotonic())
        stalls.append(stall)
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": ACTIVITY_JSON})
        if declared is None:
            response.enable_chunked_encoding()
        else:
            response.content_length = declared
        try:
            await response.prepare(request)
            chunk = b" " * (64 * 1024) if rate is None else b" "
            while stall.lasted < TOTAL_TIMEOUT + 20:  # never ends, for the length of a test
                await response.write(chunk)
                stall.sent += len(chunk)
                await asyncio.sleep(0 if rate is None else 1 / rate)
        except ConnectionError:
            pass  # the client hung up, as it should
        finally:
            stall.ended = time.monotonic()
        return response

    return handler


def _redirect_loop(hops: list[float]):
    async def handler(request: web.Request) -> web.Response:
        hops.append(time.monotonic())
        raise web.HTTPFound("/loop/b" if request.path.endswith("/a") else "/loop/a")

    return handler


def _memory_kib(pid: int) -> dict[str, int]:
    """A process's resident memory now (VmRSS) and at its highest so far (VmHWM), in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}


def _create_note(actor: str, to: str, n: int) -> dict:
    base = actor.rsplit("/", 1)[0]
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{base}/activities/{time.time_ns()}-{n}",
            "type": "Create", "actor": actor, "to": [to],
            "object": {"id": f"{base}/notes/{time.time_ns()}-{n}", "type": "Note", "attributedTo": actor,
                       "content": "<p>안녕하세요</p>", "to": [to]}}


async def _signed_inbox_post(session: aiohttp.ClientSession, instance: Instance, keys: RemoteActorKeys,
                             n: int = 0) -> tuple[int, float, str]:
    """POST a Create signed by `keys` to alice's inbox; (status, seconds until the answer, its body)."""
    body = json.dumps(_create_note(keys.uri, f"{instance.base_url}/users/alice", n)).encode()
    headers = signed_post(keys, "/users/alice/inbox", f"127.0.0.1:{instance.port}", body)
    began = time.monotonic()
    async with session.post(f"{instance.base_url}/users/alice/inbox", data=body, headers=headers) as response:
        return response.status, time.monotonic() - began, await response.text()


def _hostile_signer(peer: Peer, path: str, keypair: tuple[str, str]) -> RemoteActorKeys:
    """A signer whose keyId leads to `path` on a hostile peer (so verifying it means fetching that)."""
    uri = peer.url(path)
    return RemoteActorKeys(path, uri, f"{uri}#main-key", *keypair)


@dataclass
class _AtPeer:
    """A loopback peer in the shape add_remote_followers takes (base URL and domain)."""

    peer: Peer

    @property
    def base(self) -> str:
        return str(self.peer.root).rstrip("/")

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.peer.port}"


async def test_slow_and_hostile_peers_are_cut_off_by_timeouts_and_limits_while_other_work_goes_on(
        make_instance, pool):
    instance = make_instance(request_timeout_seconds=TOTAL_TIMEOUT)
    await _run(instance, "account", "create", "alice")
    alice = await _alice(pool)
    slow, endless, huge, inbox_stalls = [], [], [], []
    hops: list[float] = []
    keypair = generate_rsa_keypair()
    good = await RemoteServer().start()
    follower = await Receiver(keys={alice["key_id"]: alice["public_key_pem"]}).start()
    tasks: dict[tuple[str, int], asyncio.Task] = {}
    try:
        async with (serve({"/slow/{n}": _hostile(slow)}) as slow_peer,
                    serve({"/endless": _hostile(endless, rate=None)}) as endless_peer,
                    serve({"/loop/{x}": _redirect_loop(hops)}) as loop_peer,
                    serve({"/huge": _hostile(huge, declared=10 * GiB)}) as huge_peer,
                    serve({"/users/{name}/inbox": _hostile(inbox_stalls)}) as slow_inbox,
                    aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3 * TOTAL_TIMEOUT)) as session):
            async with pool.acquire() as conn:
                await add_remote_followers(conn, alice["id"], follower, 1)
                await add_remote_followers(conn, alice["id"], _AtPeer(slow_inbox), 1, shared_inbox=False)
            await asyncio.to_thread(instance.start)
            pid = instance.process.pid
            # Warm up (first key fetch, first verification, first insert) before taking the memory baseline.
            status, _, text = await _signed_inbox_post(session, instance, good.add_actor("carol"))
            assert status == 202, text
            baseline = _memory_kib(pid)

            slow_signers = [_hostile_signer(slow_peer, f"/slow/{n}", keypair)
                            for n in range(MAX_KEY_FETCHES_PER_HOST + 2)]
            attacks = {
                "slow-loris": slow_signers[:MAX_KEY_FETCHES_PER_HOST],
                "endless body": [_hostile_signer(endless_peer, "/endless", keypair)],
                "redirect loop": [_hostile_signer(loop_peer, "/loop/a", keypair)],
                "10 GB declared": [_hostile_signer(huge_peer, "/huge", keypair)],
                "over the per-host cap": slow_signers[MAX_KEY_FETCHES_PER_HOST:],  # sent once the others hang
            }
            started = time.monotonic()
            tasks.update({(what, n): asyncio.create_task(_signed_inbox_post(session, instance, keys, n))
                          for what, signers in attacks.items() if what != "over the per-host cap"
                          for n, keys in enumerate(signers)})
            await wait_for(lambda: len(slow) == MAX_KEY_FETCHES_PER_HOST and huge and endless and hops, 10,
                           "the hostile fetches")
            for n, keys in enumerate(attacks["over the per-host cap"]):
                tasks["over the per-host cap", n] = asyncio.create_task(_signed_inbox_post(session, instance, keys, n))

            # While they hang: a well-behaved peer's POST (its key fetched by the same client) and a post.
            status, legit_latency, text = await _signed_inbox_post(session, instance, good.add_actor("bob"))
            assert status == 202, text
            posted_at = time.monotonic()
            await _post(instance, "손님 맞을 준비")
            await wait_for(lambda: follower.verified(), 10, "the post at the well-behaved follower")
            arrived = time.time() - (time.monotonic() - follower.verified()[0].at)
            command_latency = follower.verified()[0].at - posted_at
            async with pool.acquire() as conn:  # from the commit that queued it (same clock: this machine's)
                queued = await conn.fetchval("SELECT extract(epoch FROM created_at)::float8 FROM deliveries "
                                             "WHERE inbox_uri = $1", f"{follower.base}/inbox")
            delivery_latency = arrived - queued
            hanging = [stall for stall in slow if stall.ended is None]
            await wait_for(lambda: inbox_stalls, 10, "the delivery to the slow inbox")

            while not all(task.done() for task in tasks.values()) or any(s.ended is None for s in inbox_stalls):
                assert time.monotonic() - started < TOTAL_TIMEOUT + 15, "a hostile peer is still being waited on"
                await asyncio.sleep(0.25)
            after = _memory_kib(pid)
            answers = {key: task.result() for key, task in tasks.items()}
    finally:
        for task in tasks.values():
            task.cancel()
        await good.close()
        await follower.close()

    durations = {what: max(answers[what, n][1] for n in range(len(signers))) for what, signers in attacks.items()}
    growth = after["VmHWM"] - baseline["VmHWM"]
    print(f"\nRSS {baseline['VmRSS'] / 1024:.1f} MiB before the attack, {after['VmRSS'] / 1024:.1f} MiB after; "
          f"peak {baseline['VmHWM'] / 1024:.1f} MiB before, {after['VmHWM'] / 1024:.1f} MiB after "
          f"(+{growth / 1024:.1f})")
    print(f"well-behaved POST answered in {legit_latency * 1000:.0f} ms; the post reached the well-behaved follower "
          f"{delivery_latency * 1000:.0f} ms after it was queued ({command_latency * 1000:.0f} ms after "
          f"`fedserver post` was started); {len(hanging)} slow-loris fetches hung meanwhile")
    for what, seconds in durations.items():
        print(f"{what}: answered {sorted({answers[what, n][0] for n in range(len(attacks[what]))})} "
              f"in {seconds:.2f} s")
    print(f"endless body: the peer sent {endless[0].sent / MiB:.1f} MiB before the hang-up; "
          f"redirects followed: {len(hops)}; slow inbox hung up after {inbox_stalls[0].lasted:.1f} s")

    # Every fetch ends: the slow ones at the total timeout, the others at once, by a limit.
    for n in range(MAX_KEY_FETCHES_PER_HOST):
        status, seconds, text = answers["slow-loris", n]
        assert status == 503 and "timed out" in text, text
        assert TOTAL_TIMEOUT - 1 <= seconds <= TOTAL_TIMEOUT + 5
    assert all(s.ended is not None and s.lasted <= TOTAL_TIMEOUT + 3 for s in slow), "the slow peer was not hung up on"
    assert [answers["over the per-host cap", n][0] for n in range(2)] == [503, 503]
    assert durations["over the per-host cap"] < 2
    for what, limit in (("endless body", "limit"), ("redirect loop", "redirect"), ("10 GB declared", "declares")):
        status, seconds, text = answers[what, 0]
        assert status == 401 and limit in text, f"{what}: {status} {text}"
        assert seconds < 5, f"{what} took {seconds:.1f} s"
    assert endless[0].ended is not None and endless[0].sent < 64 * BODY_LIMIT
    assert huge[0].ended is not None and huge[0].lasted < 5
    assert len(hops) <= 4
    # The slow inbox's delivery ends at the timeout too, and is kept for a retry.
    assert inbox_stalls[0].lasted <= TOTAL_TIMEOUT + 3
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT state, attempts, last_error FROM deliveries WHERE inbox_uri LIKE $1",
                                  f"{slow_inbox.root}%")
    assert (row["state"], row["attempts"]) == ("queued", 1) and "timed out" in row["last_error"], dict(row)
    # None of it held up other work, or the memory.
    assert legit_latency < 2, f"a well-behaved POST took {legit_latency:.1f} s during the attack"
    assert delivery_latency < 2, f"the post took {delivery_latency:.1f} s to reach a well-behaved follower"
    assert hanging, "the slow-loris fetches had already ended: nothing was tested under attack"
    assert growth < 50 * 1024, f"peak RSS grew by {growth / 1024:.0f} MiB"
    assert instance.terminate() == 0

