"""Helpers for rewards tests: fake member instances, local posts, signed receipts, publishing."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import asyncpg
from aiohttp.test_utils import TestServer

from fedserver.accounts import create_account, validate_new_account
from fedserver.app import create_app
from fedserver.config import Settings, load_settings
from fedserver.db import init_connection
from fedserver.repo import jobs
from rewards.checkpoint import CosignatureSigner
from rewards.context import RewardsContext, http_session, load_context, own_member_keys
from rewards.federation import add_member, write_policy_file
from rewards.integrator import EdgeCache, integrate_all, sign_checkpoint
from rewards.issue import issue_receipt
from rewards.keys import log_origin, receipts_key_name, witness_key_name
from rewards.note import Ed25519Signer, sign_note
from rewards.publisher import Publisher
from rewards.receipt import Receipt, build_receipt
from rewards.store import RECEIPT_DELIVERIES, upsert_member
from rewards.workers import receipt_worker
from tests.support.instance import free_port

_counter = itertools.count()


@dataclass(frozen=True)
class FakeMember:
    """A member instance simulated by the test: its three keys."""

    domain: str
    receipts: Ed25519Signer
    log: Ed25519Signer
    witness: CosignatureSigner

    @classmethod
    def create(cls, domain: str) -> FakeMember:
        return cls(domain, Ed25519Signer.generate(receipts_key_name(domain)),
                   Ed25519Signer.generate(log_origin(domain)), CosignatureSigner.generate(witness_key_name(domain)))

    @property
    def origin(self) -> str:
        return self.log.name

    def vkeys(self) -> dict[str, str]:
        return {"receipts": self.receipts.verifier().vkey(), "log": self.log.verifier().vkey(),
                "witness": self.witness.verifier().vkey()}

    def receipt(self, *, actor: str | None = None, obj: str, beneficiary: str, kind: str = "like", points: int = 1,
                when: int | None = None, rid: str | None = None) -> Receipt:
        return Receipt(
            rid or f"{self.domain}/r/{next(_counter):08d}{time.time_ns() % 10**9}",
            kind, actor or f"https://{self.domain}/users/xavier", obj, beneficiary, points,
            int(time.time()) if when is None else when,
        )

    def sign(self, receipt: Receipt) -> bytes:
        return sign_note(build_receipt(receipt), [self.receipts])


async def pin(pool: asyncpg.Pool, member: FakeMember) -> None:
    """Pin a fake member's keys as `peer add` would (receipts only: no policy file lines)."""
    async with pool.acquire() as conn:
        await upsert_member(conn, member.domain, f"https://{member.domain}", member.vkeys())


async def account_with_post(pool: asyncpg.Pool, settings: Settings, name: str) -> tuple[str, str]:
    """A local account and one live post of theirs: (actor uri, object uri)."""
    actor = await create_account(pool, settings, validate_new_account(username=name))
    obj = f"{actor.uri}/statuses/{next(_counter)}"
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO objects (uri, object_type, actor_id, is_local, content) VALUES ($1, 'Note', $2, true, 'hi')",
            obj, actor.id,
        )
    return actor.uri, obj


async def publish_now(pool: asyncpg.Pool, ctx: RewardsContext) -> int:
    """Integrate, sign and publish (the policy must have quorum none); returns the published size."""
    async with pool.acquire() as conn:
        await integrate_all(conn, EdgeCache())
        state = await sign_checkpoint(conn, ctx.keys)
    assert await Publisher(ctx).publish(pool, None, state)  # type: ignore[arg-type]
    return state.signed_size or 0


async def context(pool: asyncpg.Pool, settings: Settings) -> RewardsContext:
    """The rewards context of the instance under test."""
    return await load_context(pool, settings)


@dataclass
class LiveInstance:
    """An app served on a real loopback port with its own database (in this process)."""

    settings: Settings
    pool: asyncpg.Pool
    server: object
    ctx: RewardsContext

    @property
    def url(self) -> str:
        return self.settings.base_url

    @property
    def domain(self) -> str:
        return self.settings.instance.domain


async def start_live_instance(cluster, tmp_path, name: str, environ: dict[str, str] | None = None) -> LiveInstance:
    """Create a database, settings for http://127.0.0.1:PORT (plus `environ`) and serve the app there."""
    url = await cluster.create_database()
    port = free_port()
    settings = load_settings(environ={
        "FEDSERVER_INSTANCE__DOMAIN": f"127.0.0.1:{port}", "FEDSERVER_INSTANCE__SCHEME": "http",
        "FEDSERVER_DATABASE__URL": url, "FEDSERVER_STORAGE__DATA_DIR": str(tmp_path / name),
        "FEDSERVER_FEDERATION__ALLOW_PRIVATE_ADDRESSES": "true", **(environ or {}),
    })
    pool = await asyncpg.create_pool(url, min_size=1, max_size=8, init=init_connection)
    server = TestServer(create_app(settings, pool), host="127.0.0.1", port=port)
    await server.start_server()
    return LiveInstance(settings, pool, server, await load_context(pool, settings))


async def stop_live_instance(cluster, instance: LiveInstance) -> None:
    await instance.server.close()  # type: ignore[attr-defined]
    await instance.pool.close()
    await cluster.drop_database(instance.settings.database.url)


async def serve_again(instance: LiveInstance) -> None:
    """Serve a stopped instance again on its port (its database kept everything)."""
    port = int(instance.domain.rsplit(":", 1)[1])
    instance.server = TestServer(create_app(instance.settings, instance.pool), host="127.0.0.1", port=port)
    await instance.server.start_server()  # type: ignore[attr-defined]


async def befriend(a: LiveInstance, b: LiveInstance, quorum: str | None = None) -> None:
    """Make b a member of a's federation, as `fedserver rewards peer add` does."""
    vkeys = b.ctx.keys.vkeys()
    policy = add_member(a.ctx.policy_file.read_file_policy(), own_member_keys(b.ctx), quorum, own_member_keys(a.ctx))
    write_policy_file(a.ctx.policy_file.path, policy)
    async with a.pool.acquire() as conn:
        await upsert_member(conn, b.domain, b.url, vkeys)
    await a.ctx.members(a.pool, fresh=True)


async def publish_live(x: LiveInstance) -> bool:
    """Integrate, sign, collect cosignatures over HTTP and publish if the quorum is met."""
    async with x.pool.acquire() as conn:
        await integrate_all(conn, EdgeCache())
        state = await sign_checkpoint(conn, x.ctx.keys)
    async with http_session(x.settings) as session:
        return await Publisher(x.ctx).publish(x.pool, session, state)


async def deliver_all(x: LiveInstance) -> int:
    """One pass of the receipt delivery worker: claim what is due and deliver it; returns how many."""
    async with x.pool.acquire() as conn:
        batch = await jobs.claim(conn, RECEIPT_DELIVERIES, 100)
    async with http_session(x.settings) as session:
        worker = receipt_worker(x.ctx, x.pool, session)
        for job in batch:
            await worker.attempt(job)
    return len(batch)


async def interact(issuer: LiveInstance, actor: str, obj: str, owner: str, kind: str = "like") -> str | None:
    """Issue the receipt of a local actor's interaction, as the outbox does; returns its id."""
    async with issuer.pool.acquire() as conn, conn.transaction():
        return await issue_receipt(conn, issuer.settings, kind, actor, obj, owner)


async def log_leaves(x: LiveInstance) -> list[bytes]:
    """The instance's log entries, in order."""
    return [bytes(r["leaf"]) for r in await x.pool.fetch("SELECT leaf FROM rewards_log_entries ORDER BY idx")]
