"""tlog-witness add-checkpoint over real HTTP and PostgreSQL: every status code, CAS, evidence."""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest

from fedserver.app_keys import POOL
from rewards.checkpoint import (
    TLOG_SIZE_CONTENT_TYPE,
    AddCheckpointRequest,
    Checkpoint,
    build_add_checkpoint,
    build_checkpoint,
    cosignature_timestamp,
)
from rewards.federation import MemberKeys, add_member, empty_policy, write_policy_file
from rewards.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    leaf_hash,
    leaves_reader,
    root_from_leaf_hashes,
)
from rewards.note import (
    Ed25519Signer,
    parse_note,
    parse_signature_lines,
    sign_note,
    verify_note,
    with_signatures,
)
from tests.support.rewards import FakeMember, context

HASHES = [leaf_hash(f"leaf {i}".encode()) for i in range(64)]
ADD = "/rewards/witness/add-checkpoint"


@pytest.fixture
def member(settings) -> FakeMember:
    """A member log listed in the witness's policy file."""
    fake = FakeMember.create("peer.test")
    keys = MemberKeys("peer.test", fake.vkeys()["log"], "https://peer.test/rewards/log", fake.vkeys()["witness"],
                      "https://peer.test/rewards/witness")
    policy = add_member(empty_policy(), keys, None)
    write_policy_file(settings.rewards.policy_path(settings.storage.data_dir), policy)
    return fake


def signed(member: FakeMember, size: int, root: bytes | None = None, signer: Ed25519Signer | None = None) -> bytes:
    root = root_from_leaf_hashes(HASHES[:size]) if root is None else root
    return sign_note(build_checkpoint(Checkpoint(member.origin, size, root)), [signer or member.log])


def request(checkpoint: bytes, old: int, new: int | None = None, proof: list[bytes] | None = None) -> bytes:
    if proof is None:
        proof = consistency_proof(old, new, leaves_reader(HASHES)) if new is not None else []
    return build_add_checkpoint(AddCheckpointRequest(old, tuple(proof), checkpoint))


async def post(client, body: bytes):
    response = await client.post(ADD, data=body)
    return response.status, await response.read(), response.headers.get("Content-Type", "")


async def evidence(pool) -> list[tuple[str, str]]:
    return [(r["origin"], r["kind"]) for r in await pool.fetch("SELECT origin, kind FROM rewards_evidence ORDER BY id")]


async def test_first_checkpoint_is_cosigned_with_a_valid_timestamped_cosignature(client, pool, settings, member):
    ctx = await context(pool, settings)
    checkpoint = signed(member, 10)
    status, body, ctype = await post(client, request(checkpoint, 0))
    assert status == 200, body
    lines = parse_signature_lines(body.decode())
    assert len(lines) == 1 and lines[0].name == "shop.test/rewards/witness"
    cosigned = with_signatures(parse_note(checkpoint), lines).encode()
    verified = verify_note(cosigned, [ctx.keys.witness.verifier()])
    assert abs(cosignature_timestamp(verified.verified[0]) - time.time()) < 60
    # Then it extends with a consistency proof, and a resubmission of the same head is fine.
    assert (await post(client, request(signed(member, 37), 10, 37)))[0] == 200
    assert (await post(client, request(signed(member, 37), 37, 37)))[0] == 200
    row = await pool.fetchrow("SELECT size, root FROM rewards_witness_state WHERE origin = $1", member.origin)
    assert (row["size"], bytes(row["root"])) == (37, root_from_leaf_hashes(HASHES[:37]))


async def test_unknown_origin_is_404_and_our_own_log_is_not_witnessed(client, pool, settings, member):
    stranger = FakeMember.create("stranger.test")
    assert (await post(client, request(signed(stranger, 3), 0)))[0] == 404
    ctx = await context(pool, settings)
    ours = sign_note(build_checkpoint(Checkpoint(ctx.keys.origin, 0, EMPTY_ROOT)), [ctx.keys.log])
    assert (await post(client, request(ours, 0)))[0] == 404


async def test_checkpoint_without_a_valid_trusted_signature_is_403(client, member):
    impostor = Ed25519Signer.generate(member.origin)  # right name, unknown key
    assert (await post(client, request(signed(member, 5, signer=impostor), 0)))[0] == 403
    forged = signed(member, 5).replace(b"\n\n", b"\nextra\n\n", 1)  # text changed after signing
    assert (await post(client, request(forged, 0)))[0] in (400, 403)
    assert await client.app[POOL].fetchval("SELECT count(*) FROM rewards_witness_state") == 0


@pytest.mark.parametrize("body", [b"", b"old 1\n", b"old x\n\nfoo", b"old 01\n\n", b"new 1\n\nx\n"])
async def test_malformed_requests_are_400(client, member, body):
    assert (await post(client, body))[0] == 400


async def test_old_larger_than_the_checkpoint_is_400(client, member):
    assert (await post(client, request(signed(member, 5), 6, proof=[])))[0] == 400


async def test_old_size_different_from_ours_is_409_with_our_size(client, pool, member):
    assert (await post(client, request(signed(member, 8), 0)))[0] == 200
    status, body, ctype = await post(client, request(signed(member, 20), 4, 20))
    assert (status, body) == (409, b"8\n")
    assert ctype == TLOG_SIZE_CONTENT_TYPE
    assert await evidence(pool) == []  # a stale old size is routine, not evidence


async def test_bad_proofs_are_422_and_kept_as_evidence(client, pool, member):
    assert (await post(client, request(signed(member, 8), 0)))[0] == 200
    good = consistency_proof(8, 20, leaves_reader(HASHES))
    bad = [bytes([good[0][0] ^ 1]) + good[0][1:], *good[1:]]
    assert (await post(client, request(signed(member, 20), 8, proof=bad)))[0] == 422
    assert (await post(client, request(signed(member, 20), 8, proof=good[:-1])))[0] == 422
    state = await pool.fetchval("SELECT size FROM rewards_witness_state WHERE origin = $1", member.origin)
    assert state == 8
    assert await evidence(pool) == [(member.origin, "bad-proof"), (member.origin, "bad-proof")]
    # Replaying the same refused request keeps one copy of the evidence.
    assert (await post(client, request(signed(member, 20), 8, proof=bad)))[0] == 422
    assert len(await evidence(pool)) == 2


async def test_nonempty_proof_from_zero_and_bad_empty_root_are_422(client, member):
    assert (await post(client, request(signed(member, 5), 0, proof=[HASHES[0]])))[0] == 422
    assert (await post(client, request(signed(member, 0, root=HASHES[0]), 0, proof=[])))[0] == 422
    assert (await post(client, request(signed(member, 0), 0, proof=[])))[0] == 200


async def test_two_checkpoints_of_the_same_size_are_refused_and_the_fork_kept(client, pool, member):
    assert (await post(client, request(signed(member, 12), 0)))[0] == 200
    fork = signed(member, 12, root=hashlib.sha256(b"other history").digest())
    for old in (12, 0):
        status, body, ctype = await post(client, request(fork, old, proof=[]))
        assert (status, body, ctype) == (409, b"12\n", TLOG_SIZE_CONTENT_TYPE)
    rows = await pool.fetch("SELECT kind, body, known_checkpoint FROM rewards_evidence")
    assert {r["kind"] for r in rows} == {"fork"}
    assert all(fork in bytes(r["body"]) and bytes(r["known_checkpoint"]) == signed(member, 12) for r in rows)
    alerts = await pool.fetch("SELECT origin, kind FROM rewards_alerts")
    assert {(a["origin"], a["kind"]) for a in alerts} == {(member.origin, "fork")}


async def test_concurrent_requests_from_the_same_old_size_cosign_exactly_once(client, pool, member):
    for round_ in range(5):
        old = await pool.fetchval("SELECT size FROM rewards_witness_state WHERE origin = $1", member.origin) or 0
        sizes = [old + 1 + i for i in range(8)]
        results = await asyncio.gather(*(post(client, request(signed(member, n), old, n)) for n in sizes))
        statuses = [status for status, _, _ in results]
        assert statuses.count(200) == 1, (round_, statuses)
        assert statuses.count(409) == len(sizes) - 1
        winner = sizes[statuses.index(200)]
        stored = await pool.fetchval("SELECT size FROM rewards_witness_state WHERE origin = $1", member.origin)
        assert stored == winner
        assert all(body == f"{winner}\n".encode() for status, body, _ in results if status == 409)


async def test_monitoring_endpoint_serves_the_latest_cosigned_checkpoint(client, pool, settings, member):
    ctx = await context(pool, settings)
    path = f"/rewards/witness/{hashlib.sha256(member.origin.encode()).hexdigest()}/checkpoint"
    assert (await client.get(path)).status == 404
    assert (await post(client, request(signed(member, 9), 0)))[0] == 200
    response = await client.get(path)
    assert response.status == 200
    note = verify_note(await response.read(), [ctx.keys.witness.verifier(), member.log.verifier()])
    assert note.verified_names() == {member.origin, "shop.test/rewards/witness"}
    assert note.text.splitlines()[1] == "9"
    assert (await client.get("/rewards/witness/nothex/checkpoint")).status == 404
