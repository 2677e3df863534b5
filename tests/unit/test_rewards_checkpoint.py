"""C2SP checkpoints, cosignature/v1, tlog-witness bodies, tlog-proof and tlog-policy."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rewards.checkpoint import (
    AddCheckpointRequest,
    Checkpoint,
    CheckpointError,
    CosignatureSigner,
    CosignatureVerifier,
    TlogProof,
    build_add_checkpoint,
    build_checkpoint,
    build_tlog_proof,
    build_tlog_size,
    cosignature_message,
    cosignature_timestamp,
    open_checkpoint,
    parse_add_checkpoint,
    parse_checkpoint,
    parse_tlog_proof,
    parse_tlog_size,
    peek_checkpoint,
)
from rewards.merkle import inclusion_proof, leaf_hash, leaves_reader, root_from_leaf_hashes, verify_inclusion
from rewards.note import (
    SIG_COSIGNATURE_V1,
    SIG_ED25519,
    Ed25519Signer,
    MalformedNoteError,
    UnverifiedNoteError,
    add_signatures,
    key_id,
    parse_note,
    sign_note,
    verify_note,
    with_signatures,
)
from rewards.policy import (
    PolicyError,
    QuorumError,
    build_policy,
    parse_policy,
    quorum_satisfied,
    verify_checkpoint,
)

SPEC_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_LOG_SIG = (
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5"
    "/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)
SPEC_COSIG = (
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJs"
    "X3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)
SPEC_ADD_CHECKPOINT = (
    "old 20852014\n"
    "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
    "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n"
    "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n"
    "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n"
    "\n" + SPEC_BODY + "\n" + SPEC_LOG_SIG
)


# Checkpoints


def test_spec_checkpoint_parses_and_rebuilds_byte_for_byte():
    cp = parse_checkpoint(SPEC_BODY)
    assert cp.origin == "example.com/behind-the-sofa"
    assert cp.size == 20852163
    assert base64.b64encode(cp.root).decode() == "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    assert build_checkpoint(cp) == SPEC_BODY
    assert peek_checkpoint(SPEC_BODY + "\n" + SPEC_LOG_SIG + SPEC_COSIG) == cp


def test_checkpoint_extension_lines_round_trip():
    cp = Checkpoint("a.example/rewards/v1", 0, bytes(32), ("ext one", "ext-two"))
    assert parse_checkpoint(build_checkpoint(cp)) == cp


@pytest.mark.parametrize(
    "text",
    [
        "origin\n020852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "origin\n-1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "origin\n+1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "origin\n9223372036854775808\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "origin\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n",
        "origin\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==\n",
        "origin\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n",
        "origin\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",
        "origin\n1\n",
        "\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "origin\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\next\twith tab\n",
    ],
)
def test_malformed_checkpoints_are_rejected(text):
    with pytest.raises(CheckpointError):
        parse_checkpoint(text)


def test_open_checkpoint_verifies_the_log_signature():
    log = Ed25519Signer.generate("a.example/rewards/v1")
    body = build_checkpoint(Checkpoint(log.name, 3, bytes(32)))
    signed = open_checkpoint(sign_note(body, [log]), [log.verifier()])
    assert signed.checkpoint.size == 3
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(sign_note(body, [log]).replace(b"\n3\n", b"\n4\n"), [log.verifier()])


# cosignature/v1


def test_spec_cosignature_line_has_key_id_then_big_endian_timestamp():
    sig = parse_note(SPEC_BODY + "\n" + SPEC_COSIG).signatures[0]
    assert len(sig.key_id) == 4 and len(sig.signature) == 8 + 64
    assert cosignature_timestamp(sig) == 1679315147  # the spec's example "time" line


def test_cosignature_message_is_header_time_then_checkpoint_body():
    message = cosignature_message(SPEC_BODY.encode(), 1679315147)
    assert message == (
        b"cosignature/v1\ntime 1679315147\n"
        b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )


def test_cosignature_bytes_are_key_id_u64_timestamp_and_ed25519_signature():
    seed = bytes(range(32))
    cosigner = CosignatureSigner("witness.example/w1", seed)
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    assert cosigner.key_id == key_id("witness.example/w1", SIG_COSIGNATURE_V1, public)
    assert cosigner.key_id != key_id("witness.example/w1", SIG_ED25519, public)
    line = cosigner.cosign(SPEC_BODY, 1679315147).line()
    raw = base64.b64decode(line.split(" ")[2])
    expected_sig = Ed25519PrivateKey.from_private_bytes(seed).sign(
        b"cosignature/v1\ntime 1679315147\n" + SPEC_BODY.encode()
    )
    assert raw == cosigner.key_id + (1679315147).to_bytes(8, "big") + expected_sig
    assert len(raw) == 4 + 8 + 64


def test_cosignature_verifies_and_rejects_tampered_timestamp():
    cosigner = CosignatureSigner.generate("witness.example/w1")
    verifier = CosignatureVerifier.from_vkey(cosigner.verifier().vkey())
    note = SPEC_BODY + "\n" + cosigner.cosign(SPEC_BODY, 1700000000).line()
    verified = verify_note(note, [verifier])
    assert cosignature_timestamp(verified.verified[0]) == 1700000000
    sig = parse_note(note).signatures[0]
    moved = sig.signature[:7] + bytes([sig.signature[7] ^ 1]) + sig.signature[8:]
    assert not verifier.verify(SPEC_BODY.encode(), moved)
    assert not verifier.verify(SPEC_BODY.encode(), sig.signature[:-1])
    assert not verifier.verify(b"other\n", sig.signature)


def test_timed_cosigner_works_with_add_signatures():
    log = Ed25519Signer.generate("a.example/rewards/v1")
    witness = CosignatureSigner.generate("b.example/rewards/witness")
    body = build_checkpoint(Checkpoint(log.name, 1, bytes(32)))
    signed = add_signatures(sign_note(body, [log]), [witness.at(1767225600)])
    verified = verify_note(signed, [log.verifier(), witness.verifier()])
    assert len(verified.verified) == 2


def test_cosigner_key_text_round_trips_and_key_types_are_not_mixed():
    cosigner = CosignatureSigner.generate("w.example/w")
    assert CosignatureSigner.from_skey(cosigner.skey()).public_key == cosigner.public_key
    with pytest.raises(MalformedNoteError):
        CosignatureVerifier.from_vkey(Ed25519Signer.generate("x.example/k").verifier().vkey())
    with pytest.raises(MalformedNoteError):
        Ed25519Signer.from_skey(cosigner.skey())


# tlog-witness add-checkpoint


def test_spec_add_checkpoint_body_parses_and_rebuilds():
    req = parse_add_checkpoint(SPEC_ADD_CHECKPOINT.encode())
    assert req.old_size == 20852014
    assert len(req.proof) == 4
    assert req.checkpoint == (SPEC_BODY + "\n" + SPEC_LOG_SIG).encode()
    assert build_add_checkpoint(req) == SPEC_ADD_CHECKPOINT.encode()


def test_add_checkpoint_with_old_size_zero_has_no_proof_lines():
    req = AddCheckpointRequest(0, (), b"cp\n")
    assert build_add_checkpoint(req) == b"old 0\n\ncp\n"
    assert parse_add_checkpoint(b"old 0\n\ncp\n") == req


@pytest.mark.parametrize(
    "body",
    [
        b"old 01\n\ncp\n",
        b"old -1\n\ncp\n",
        b"old  1\n\ncp\n",
        b"new 1\n\ncp\n",
        b"old 1\nnot-base64!\n\ncp\n",
        b"old 1\nAAAA\n\ncp\n",
        b"old 1\n\n",
        b"old 1\n",
        b"old 1\n" + b"PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n" * 64 + b"\ncp\n",
    ],
)
def test_malformed_add_checkpoint_bodies_are_rejected(body):
    with pytest.raises(CheckpointError):
        parse_add_checkpoint(body)


def test_add_checkpoint_accepts_63_proof_lines_and_refuses_to_build_64():
    line = b"PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
    assert len(parse_add_checkpoint(b"old 1\n" + line * 63 + b"\ncp\n").proof) == 63
    with pytest.raises(CheckpointError):
        build_add_checkpoint(AddCheckpointRequest(1, (bytes(32),) * 64, b"cp\n"))


def test_tlog_size_body_round_trips():
    assert build_tlog_size(42) == "42\n"
    assert parse_tlog_size(b"42\n") == 42
    for bad in (b"42", b"042\n", b"\n", b"4 2\n"):
        with pytest.raises(CheckpointError):
            parse_tlog_size(bad)


# tlog-proof


SPEC_TLOG_PROOF = (
    "c2sp.org/tlog-proof@v1\n"
    "extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ\n"
    "index 73894\n"
    "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n"
    "B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=\n"
    "EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=\n"
    "RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=\n"
    "AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=\n"
    "\n"
    "example.com/fancylog\n109482\nsFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n"
)


def test_spec_tlog_proof_parses_and_rebuilds():
    proof = parse_tlog_proof(SPEC_TLOG_PROOF.encode())
    assert proof.index == 73894
    assert len(proof.path) == 5
    assert proof.extra is not None and proof.extra.startswith(b"age-v1.2.1-darwin-arm64.tar.gz")
    assert proof.checkpoint.startswith(b"example.com/fancylog\n109482\n")
    assert build_tlog_proof(proof) == SPEC_TLOG_PROOF.encode()


@pytest.mark.parametrize(
    "text",
    [
        b"c2sp.org/tlog-proof@v2\nindex 1\n\ncp\n",
        b"c2sp.org/tlog-proof@v1\n\ncp\n",
        b"c2sp.org/tlog-proof@v1\nindex 01\n\ncp\n",
        b"c2sp.org/tlog-proof@v1\nindex 1\nextra AAAA\n\ncp\n",
        b"c2sp.org/tlog-proof@v1\nextra !!\nindex 1\n\ncp\n",
        b"c2sp.org/tlog-proof@v1\nindex 1\n\n",
    ],
)
def test_malformed_tlog_proofs_are_rejected(text):
    with pytest.raises(CheckpointError):
        parse_tlog_proof(text)


# tlog-policy and an end-to-end proof


def _keys():
    log = Ed25519Signer.generate("a.example/rewards/v1")
    witnesses = {name: CosignatureSigner.generate(f"{name.lower()}.example/w") for name in
                 ("X1", "X2", "X3", "Y1", "Y2", "Y3")}
    return log, witnesses


def _spec_policy_text(log, witnesses):
    lines = [f"# example policy\nlog {log.verifier().vkey()} https://a.example/rewards/log", ""]
    for name, w in witnesses.items():
        lines.append(f"witness\t{name}  {w.verifier().vkey()}")
    lines += [
        "group X-witnesses 2 X1 X2 X3",
        "  group Y-witnesses any Y1 Y2 Y3  ",
        "group X-and-Y all X-witnesses Y-witnesses",
        "quorum X-and-Y",
    ]
    return "\n".join(lines) + "\n"


def test_policy_quorum_follows_group_thresholds():
    log, witnesses = _keys()
    policy = parse_policy(_spec_policy_text(log, witnesses))
    assert policy.logs[0].url == "https://a.example/rewards/log"
    assert quorum_satisfied(policy, {"X1", "X3", "Y2"})
    assert not quorum_satisfied(policy, {"X1", "Y1", "Y2", "Y3"})
    assert not quorum_satisfied(policy, {"X1", "X2", "X3"})
    assert not quorum_satisfied(policy, set())
    assert parse_policy(build_policy(policy)) == policy


def test_quorum_none_needs_no_cosignatures():
    policy = parse_policy("quorum none\n")
    assert quorum_satisfied(policy, set())


@pytest.mark.parametrize(
    "extra, message",
    [
        ("group G 2 X1\nquorum G", "threshold"),
        ("group G 0 X1 X2\nquorum G", "threshold"),
        ("group G any X1 X1\nquorum G", "twice"),
        ("group G any Z9\nquorum G", "defined earlier"),
        ("group none any X1\nquorum none", "reserved"),
        ("group X1 any X2\nquorum X1", "already defined"),
        ("quorum X1\nquorum X2", "more than one"),
        ("quorum G\ngroup G any X1", "defined earlier"),
        ("group G any\nquorum G", "expected"),
        ("frobnicate\nquorum X1", "unknown keyword"),
        ("", "no quorum"),
        ("quorum X1\x0b", "control"),
    ],
)
def test_bad_policies_are_rejected_with_clear_messages(extra, message):
    log, witnesses = _keys()
    head = [f"log {log.verifier().vkey()}"]
    head += [f"witness {n} {witnesses[n].verifier().vkey()}" for n in ("X1", "X2")]
    with pytest.raises(PolicyError, match=message):
        parse_policy("\n".join(head) + "\n" + extra + "\n")


def test_policy_rejects_duplicate_keys_and_wrong_key_types():
    log, witnesses = _keys()
    vkey = witnesses["X1"].verifier().vkey()
    with pytest.raises(PolicyError, match="listed twice"):
        parse_policy(f"witness A {vkey}\nwitness B {vkey}\nquorum A\n")
    with pytest.raises(PolicyError, match="0x04"):
        parse_policy(f"witness A {log.verifier().vkey()}\nquorum A\n")
    with pytest.raises(PolicyError, match="0x01"):
        parse_policy(f"log {vkey}\nquorum none\n")


def _log_with_receipts(log, count):
    leaves = [f"receipt {i}\n".encode() for i in range(count)]
    hashes = [leaf_hash(x) for x in leaves]
    body = build_checkpoint(Checkpoint(log.name, count, root_from_leaf_hashes(hashes)))
    return hashes, body


def test_cosigned_tlog_proof_verifies_end_to_end_against_policy():
    log, witnesses = _keys()
    policy = parse_policy(_spec_policy_text(log, witnesses))
    hashes, body = _log_with_receipts(log, 1000)
    cosigners = [witnesses[n].at(1767225600 + i) for i, n in enumerate(("X1", "X3", "Y2"))]
    checkpoint = add_signatures(sign_note(body, [log]), cosigners)
    path = tuple(inclusion_proof(123, 1000, leaves_reader(hashes)))
    wire = build_tlog_proof(TlogProof(123, path, checkpoint, extra=b"ctx"))

    proof = parse_tlog_proof(wire)
    witnessed = verify_checkpoint(proof.checkpoint, policy)
    assert witnessed.cosigned_at == {"X1": 1767225600, "X3": 1767225601, "Y2": 1767225602}
    cp = witnessed.checkpoint
    assert verify_inclusion(proof.index, cp.size, hashes[123], list(proof.path), cp.root)
    assert not verify_inclusion(proof.index, cp.size, hashes[124], list(proof.path), cp.root)


def test_checkpoint_without_quorum_or_log_signature_is_rejected():
    log, witnesses = _keys()
    policy = parse_policy(_spec_policy_text(log, witnesses))
    _, body = _log_with_receipts(log, 10)
    few = add_signatures(sign_note(body, [log]), [witnesses["X1"].at(1), witnesses["Y1"].at(1)])
    with pytest.raises(QuorumError, match="quorum"):
        verify_checkpoint(few, policy)
    cosigs = [witnesses[n].at(1) for n in ("X1", "X2", "Y1")]
    no_log = sign_note(body, cosigs)
    with pytest.raises(UnverifiedNoteError, match="not signed by the log"):
        verify_checkpoint(no_log, policy)
    other = Ed25519Signer.generate("c.example/rewards/v1")
    _, foreign = _log_with_receipts(other, 10)
    with pytest.raises(UnverifiedNoteError, match="no trusted log key"):
        verify_checkpoint(sign_note(foreign, [other, *cosigs]), policy)


def test_invalid_cosignature_from_a_policy_witness_rejects_the_checkpoint():
    log, witnesses = _keys()
    policy = parse_policy(_spec_policy_text(log, witnesses))
    _, body = _log_with_receipts(log, 10)
    note = parse_note(add_signatures(sign_note(body, [log]), [witnesses["X1"].at(5)]))
    bad = witnesses["X2"].cosign(body.replace("\n10\n", "\n11\n"), 5)
    with pytest.raises(UnverifiedNoteError, match="invalid signature"):
        verify_checkpoint(with_signatures(note, [bad]).encode(), policy)
