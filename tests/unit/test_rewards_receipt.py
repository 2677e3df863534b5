"""rewards/receipt/v1 bodies: canonical build/parse, strict validation, double signing."""

from __future__ import annotations

import dataclasses

import pytest

from rewards.note import Ed25519Signer, add_signatures, parse_note, sign_note, verify_note
from rewards.receipt import (
    ALL_KINDS,
    RECEIPT_HEADER,
    V1_KINDS,
    Receipt,
    ReceiptError,
    build_receipt,
    parse_receipt,
)

REFERENCE_TEXT = (
    "rewards/receipt/v1\n"
    "id b.example/r/01JABCD7Q2\n"
    "kind like\n"
    "actor https://b.example/users/xavier\n"
    "object https://a.example/posts/42\n"
    "beneficiary https://a.example/users/yara\n"
    "points 1\n"
    "time 1767225600\n"
)
REFERENCE = Receipt(
    id="b.example/r/01JABCD7Q2",
    kind="like",
    actor="https://b.example/users/xavier",
    object="https://a.example/posts/42",
    beneficiary="https://a.example/users/yara",
    points=1,
    time=1767225600,
)


def test_reference_receipt_parses_and_builds_byte_for_byte():
    assert parse_receipt(REFERENCE_TEXT) == REFERENCE
    assert build_receipt(REFERENCE) == REFERENCE_TEXT
    assert REFERENCE.actor_host == "b.example"
    assert not REFERENCE.is_reversal


def test_receipt_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        REFERENCE.points = 5  # type: ignore[misc]


def test_all_kinds_and_reversals_are_accepted():
    assert V1_KINDS == {"like", "announce", "reply", "undo-like", "undo-announce", "undo-reply"}
    assert ALL_KINDS == V1_KINDS | {"curate-share", "curate-reply", "undo-curate-share", "undo-curate-reply"}
    for kind in V1_KINDS:
        points = -1 if kind.startswith("undo-") else 2
        r = dataclasses.replace(REFERENCE, kind=kind, points=points)
        assert parse_receipt(build_receipt(r)) == r
        assert r.is_reversal == kind.startswith("undo-")


def test_zero_points_are_allowed_for_self_likes():
    assert parse_receipt(REFERENCE_TEXT.replace("points 1", "points 0")).points == 0


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("kind", "dislike", "unknown receipt kind"),
        ("kind", "undo-follow", "unknown receipt kind"),
        ("points", -1, "negative points"),
        ("points", 1 << 63, "out of range"),
        ("points", 1.5, "integer"),
        ("points", True, "integer"),
        ("time", -1, "out of range"),
        ("id", "", "receipt id"),
        ("id", "has space", "receipt id"),
        ("id", "x" * 257, "receipt id"),
        ("actor", "ftp://b.example/u", "http"),
        ("actor", "b.example/users/xavier", "http"),
        ("object", "https://a.example/posts/4 2", "URL"),
        ("beneficiary", "https:///nohost", "http"),
    ],
)
def test_invalid_fields_are_rejected(field, value, message):
    with pytest.raises(ReceiptError, match=message):
        dataclasses.replace(REFERENCE, **{field: value})


def test_reversal_with_positive_points_is_rejected():
    with pytest.raises(ReceiptError, match="positive points"):
        dataclasses.replace(REFERENCE, kind="undo-like", points=1)


@pytest.mark.parametrize(
    "text",
    [
        REFERENCE_TEXT.replace("rewards/receipt/v1", "rewards/receipt/v2"),
        REFERENCE_TEXT[:-1],
        REFERENCE_TEXT.replace("\n", "\r\n"),
        REFERENCE_TEXT + "extra field\n",
        REFERENCE_TEXT.replace("time 1767225600\n", ""),
        REFERENCE_TEXT.replace("kind like\nactor", "kind  like\nactor"),
        REFERENCE_TEXT.replace("kind like\n", "").replace("points 1\n", "points 1\nkind like\n"),
        REFERENCE_TEXT.replace("points 1", "points 01"),
        REFERENCE_TEXT.replace("points 1", "points +1"),
        REFERENCE_TEXT.replace("points 1", "points -0"),
        REFERENCE_TEXT.replace("points 1", "points 1.0"),
        REFERENCE_TEXT.replace("points 1", "points 99999999999999999999"),
        REFERENCE_TEXT.replace("time 1767225600", "time 1767225600.5"),
        REFERENCE_TEXT.replace("time 1767225600", "time -5"),
        REFERENCE_TEXT.replace("id b.example", "ID b.example"),
        REFERENCE_TEXT.replace("actor https", "actor\thttps"),
        "\n" + REFERENCE_TEXT,
    ],
)
def test_non_canonical_receipt_text_is_rejected(text):
    with pytest.raises(ReceiptError):
        parse_receipt(text)


def test_receipt_signed_by_issuer_and_countersigned_is_one_leaf():
    issuer = Ed25519Signer.generate("b.example/rewards/receipts")
    counterparty = Ed25519Signer.generate("a.example/rewards/receipts")
    signed = sign_note(build_receipt(REFERENCE), [issuer])
    assert verify_note(signed, [issuer.verifier()]).text == REFERENCE_TEXT
    leaf = add_signatures(signed, [counterparty])
    verified = verify_note(leaf, [issuer.verifier(), counterparty.verifier()])
    assert verified.verified_names() == {issuer.name, counterparty.name}
    assert parse_receipt(parse_note(leaf).text) == REFERENCE
    assert parse_note(leaf).text.startswith(RECEIPT_HEADER + "\n")


V2_TEXT = (
    "rewards/receipt/v2\n"
    "id b.example/r/01JABCD7Q3\n"
    "policy 2\n"
    "kind curate-share\n"
    "actor https://b.example/users/xavier\n"
    "object https://a.example/posts/42\n"
    "author https://a.example/users/yara\n"
    "beneficiary https://b.example/users/xavier\n"
    "points 1\n"
    "time 1767225600\n"
)


def test_v2_curation_receipt_names_author_and_curator_and_round_trips():
    r = parse_receipt(V2_TEXT)
    assert (r.kind, r.policy, r.author, r.beneficiary) == ("curate-share", 2, "https://a.example/users/yara",
                                                           "https://b.example/users/xavier")
    assert r.counterparty == "https://a.example/users/yara" and r.is_curation and not r.is_same_instance
    assert build_receipt(r) == V2_TEXT
    for kind in ALL_KINDS:
        earner = r.actor if kind.removeprefix("undo-").startswith("curate-") else r.author
        v2 = dataclasses.replace(r, kind=kind, beneficiary=earner, points=-1 if kind.startswith("undo-") else 2)
        assert parse_receipt(build_receipt(v2)) == v2


@pytest.mark.parametrize("text, message", [
    (V2_TEXT.replace("beneficiary https://b.example/users/xavier", "beneficiary https://a.example/users/yara"),
     "the actor"),
    (V2_TEXT.replace("policy 2", "policy 1"), "names no author"),
    (REFERENCE_TEXT.replace("kind like", "kind curate-share"), "needs policy 2"),
])
def test_v2_receipts_name_who_earns_and_v1_has_no_curation(text, message):
    with pytest.raises(ReceiptError, match=message):
        parse_receipt(text)


def test_same_instance_receipt_is_recognised():
    r = dataclasses.replace(parse_receipt(V2_TEXT), kind="like", author="https://b.example/users/yara",
                            beneficiary="https://b.example/users/yara")
    assert r.is_same_instance and not r.is_curation
