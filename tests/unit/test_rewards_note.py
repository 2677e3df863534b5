"""C2SP signed-note: spec and Go reference vectors, key encodings, tamper cases."""

from __future__ import annotations

import hashlib

import pytest

from rewards.note import (
    EM_DASH,
    SIG_ED25519,
    Ed25519Signer,
    Ed25519Verifier,
    MalformedNoteError,
    NoteError,
    NoteSignature,
    UnverifiedNoteError,
    add_signatures,
    b64encode,
    key_id,
    parse_note,
    parse_signature_lines,
    parse_skey,
    parse_vkey,
    sign_note,
    verify_note,
)

# c2sp.org/signed-note@v1.0.0, "Verifier keys" example.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n"
    "\n"
    "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

# golang.org/x/mod/sumdb/note documentation example (PeterNeumann key).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT
    + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_spec_example_vkey_verifies_spec_example_note():
    verifier = Ed25519Verifier.from_vkey(SPEC_VKEY)
    assert verifier.name == "example.com/foo"
    assert verifier.key_id.hex() == "530d903a"
    verified = verify_note(SPEC_NOTE.encode(), [verifier])
    assert verified.text == "This is an example message.\n"
    assert verified.verified_names() == {"example.com/foo"}
    assert verified.unverified == ()


def test_key_id_is_truncated_sha256_of_name_newline_type_and_key():
    key = parse_vkey(SPEC_VKEY)
    assert key.sig_type == SIG_ED25519
    want = hashlib.sha256(b"example.com/foo\n\x01" + key.public_key).digest()[:4]
    assert key_id("example.com/foo", SIG_ED25519, key.public_key) == want == key.key_id
    assert key.encode() == SPEC_VKEY


def test_go_reference_key_signs_byte_identical_note():
    signer = Ed25519Signer.from_skey(GO_SKEY)
    assert signer.verifier().vkey() == GO_VKEY
    assert signer.skey() == GO_SKEY
    assert sign_note(GO_TEXT, [signer]).decode() == GO_NOTE
    assert verify_note(GO_NOTE, [Ed25519Verifier.from_vkey(GO_VKEY)]).text == GO_TEXT


def test_signer_repr_and_parsed_skey_repr_hide_the_seed():
    signer = Ed25519Signer.from_skey(GO_SKEY)
    seed_b64 = GO_SKEY.rsplit("+", 1)[1]
    assert signer.seed.hex() not in repr(signer)
    assert parse_skey(GO_SKEY).seed.hex() not in repr(parse_skey(GO_SKEY))
    assert seed_b64 not in repr(signer)


@pytest.mark.parametrize(
    "vkey",
    [
        "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # upper hex
        "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # wrong id
        "example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # wrong name
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",  # bad base64
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2l",  # non-canonical
        "example.com/foo+530d903a",
        "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example com+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/foo+530d90+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    ],
)
def test_malformed_vkeys_are_rejected(vkey):
    with pytest.raises(MalformedNoteError):
        Ed25519Verifier.from_vkey(vkey)


def test_changed_text_fails_verification():
    tampered = SPEC_NOTE.replace("example message", "example massage")
    with pytest.raises(UnverifiedNoteError, match="invalid signature"):
        verify_note(tampered, [Ed25519Verifier.from_vkey(SPEC_VKEY)])


def test_wrong_key_with_same_name_is_ignored_and_note_rejected():
    other = Ed25519Signer.generate("example.com/foo").verifier()
    with pytest.raises(UnverifiedNoteError, match="no signature from a known key"):
        verify_note(SPEC_NOTE, [other])


def test_known_key_with_corrupted_signature_rejects_the_note():
    signer = Ed25519Signer.generate("a.example/k")
    note = parse_note(sign_note("hello\n", [signer]))
    sig = note.signatures[0]
    bad = NoteSignature(sig.name, sig.key_id, bytes([sig.signature[0] ^ 1]) + sig.signature[1:])
    data = "hello\n\n" + bad.line()
    with pytest.raises(UnverifiedNoteError):
        verify_note(data, [signer.verifier()])


def test_note_signed_only_by_unknown_keys_is_rejected():
    signer = Ed25519Signer.generate("stranger.example/k")
    with pytest.raises(UnverifiedNoteError):
        verify_note(sign_note("hello\n", [signer]), [Ed25519Verifier.from_vkey(SPEC_VKEY)])


def test_unknown_signatures_are_ignored_and_many_signatures_accepted():
    signers = [Ed25519Signer.generate(f"s{i}.example/k") for i in range(20)]
    data = sign_note("many\nsigners\n", signers)
    verified = verify_note(data, [signers[17].verifier()])
    assert verified.verified_names() == {"s17.example/k"}
    assert len(verified.unverified) == 19


def test_too_many_signatures_are_rejected():
    signer = Ed25519Signer.generate("a.example/k")
    line = parse_note(sign_note("x\n", [signer])).signatures[0].line()
    with pytest.raises(MalformedNoteError, match="more than"):
        parse_note("x\n\n" + line * 101)


@pytest.mark.parametrize("char", ["\t", "\r", "\x00", "\x1b", "\x7f"])
def test_control_characters_are_rejected(char):
    signer = Ed25519Signer.generate("a.example/k")
    with pytest.raises(MalformedNoteError, match="control character"):
        sign_note(f"bad{char}text\n", [signer])
    good = sign_note("badtext\n", [signer]).decode()
    with pytest.raises(MalformedNoteError):
        verify_note(good.replace("badtext", f"bad{char}text"), [signer.verifier()])


@pytest.mark.parametrize(
    "data",
    [
        b"no blank line\n" + EM_DASH.encode() + b" a.example/k AAAAAAA=\n",
        b"no signatures\n\n",
        b"missing final newline\n\n" + EM_DASH.encode() + b" a.example/k AAAAAAA=",
        b"hyphen\n\n- a.example/k AAAAAAA=\n",
        b"double space\n\n" + EM_DASH.encode() + b"  a.example/k AAAAAAA=\n",
        b"plus in name\n\n" + EM_DASH.encode() + b" a+b AAAAAAA=\n",
        b"short sig\n\n" + EM_DASH.encode() + b" a.example/k AAAA\n",
        b"bad utf8 \xff\n\n" + EM_DASH.encode() + b" a.example/k AAAAAAA=\n",
        b"trailing junk\n\n" + EM_DASH.encode() + b" a.example/k AAAAAAA=\nextra\n",
    ],
)
def test_malformed_notes_are_rejected(data):
    with pytest.raises(MalformedNoteError):
        parse_note(data)


@pytest.mark.parametrize("name", ["", "has space", "has+plus", "tab\tname", "nbsp\u00a0name"])
def test_key_names_with_spaces_or_plus_are_rejected(name):
    with pytest.raises(MalformedNoteError):
        Ed25519Signer(name, bytes(32))


def test_text_may_contain_blank_lines_split_at_the_last_one():
    signer = Ed25519Signer.generate("a.example/k")
    text = "para one\n\npara two\n\n"
    verified = verify_note(sign_note(text, [signer]), [signer.verifier()])
    assert verified.text == text


def test_add_signatures_countersigns_and_replaces_same_key():
    issuer = Ed25519Signer.generate("b.example/rewards/receipts")
    counter = Ed25519Signer.generate("a.example/rewards/receipts")
    once = sign_note("receipt\n", [issuer])
    both = add_signatures(once, [counter])
    verified = verify_note(both, [issuer.verifier(), counter.verifier()])
    assert [s.name for s in verified.verified] == [issuer.name, counter.name]
    again = add_signatures(both, [counter])
    assert len(parse_note(again).signatures) == 2


def test_witness_response_lines_parse_and_merge():
    signer = Ed25519Signer.generate("w.example/k")
    note = parse_note(sign_note("text\n", [signer]))
    body = note.signatures[0].line()
    assert parse_signature_lines(body) == note.signatures
    with pytest.raises(MalformedNoteError):
        parse_signature_lines(body.rstrip("\n"))


def test_conflicting_known_keys_are_a_configuration_error():
    a = Ed25519Signer.generate("same.example/k").verifier()
    b = Ed25519Signer.generate("same.example/k").verifier()
    forged = Ed25519Verifier.__new__(Ed25519Verifier)
    for attr in ("name", "public_key", "_key"):
        object.__setattr__(forged, attr, getattr(b, attr))
    object.__setattr__(forged, "key_id", a.key_id)
    data = sign_note("x\n", [Ed25519Signer.generate("same.example/k")])
    with pytest.raises(NoteError, match="share name"):
        verify_note(data, [a, forged])


def test_signature_lines_use_em_dash_and_key_id_prefix():
    signer = Ed25519Signer.from_skey(GO_SKEY)
    line = parse_note(GO_NOTE).signatures[0]
    assert line.key_id == signer.key_id
    assert line.line() == f"{EM_DASH} PeterNeumann {b64encode(line.key_id + line.signature)}\n"
    assert len(line.signature) == 64
