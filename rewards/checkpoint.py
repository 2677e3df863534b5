"""C2SP checkpoints, cosignature/v1, tlog-witness request bodies and tlog-proof.

Formats: tlog-checkpoint v1.0.0, tlog-cosignature v1.0.1 (Ed25519, sig type 0x04),
tlog-witness v1.0.0 (add-checkpoint body, text/x.tlog.size) and tlog-proof@v1.
Trust policies (tlog-policy) live in ``rewards.policy``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from rewards.merkle import HASH_SIZE
from rewards.note import (
    SIG_COSIGNATURE_V1,
    MalformedNoteError,
    NoteSignature,
    NoteVerifier,
    PublicKeyVerifier,
    SeedSigner,
    VerifiedNote,
    b64decode_strict,
    b64encode,
    check_text,
    ed25519_verify,
    parse_note,
    verify_note,
)

MAX_SIZE = (1 << 63) - 1
MAX_PROOF_LINES = 63
COSIGNATURE_HEADER = "cosignature/v1"
TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"
TLOG_SIZE_CONTENT_TYPE = "text/x.tlog.size"
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class CheckpointError(MalformedNoteError):
    """A checkpoint, witness request or proof does not follow its format."""


def parse_decimal(text: str, what: str) -> int:
    """Parse a non-negative ASCII decimal with no leading zeroes, at most 2**63 - 1."""
    if not _DECIMAL.fullmatch(text) or len(text) > 19 or int(text) > MAX_SIZE:
        raise CheckpointError(f"{what} {text!r} is not a decimal number in range")
    return int(text)


def parse_hash(text: str, what: str) -> bytes:
    """Decode a base64 SHA-256 hash."""
    try:
        raw = b64decode_strict(text, what)
    except MalformedNoteError as e:
        raise CheckpointError(str(e)) from None
    if len(raw) != HASH_SIZE:
        raise CheckpointError(f"{what} is {len(raw)} bytes, not {HASH_SIZE}")
    return raw


# Checkpoints


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, tree size, root hash and optional extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()


def build_checkpoint(cp: Checkpoint) -> str:
    """Return the checkpoint note text (ending in a newline)."""
    if not cp.origin or "\n" in cp.origin:
        raise CheckpointError("checkpoint origin must be one non-empty line")
    if not 0 <= cp.size <= MAX_SIZE or len(cp.root) != HASH_SIZE:
        raise CheckpointError("checkpoint size or root hash out of range")
    if any(not ext or "\n" in ext for ext in cp.extensions):
        raise CheckpointError("checkpoint extension lines must be non-empty single lines")
    lines = [cp.origin, str(cp.size), b64encode(cp.root), *cp.extensions]
    text = "\n".join(lines) + "\n"
    _check_checkpoint_text(text)
    return text


def _check_checkpoint_text(text: str) -> None:
    try:
        check_text(text)
    except MalformedNoteError as e:
        raise CheckpointError(f"checkpoint: {e}") from None


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse checkpoint note text (without signatures)."""
    _check_checkpoint_text(text)
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise CheckpointError("checkpoint needs at least three non-empty lines")
    origin, size, root, *extensions = lines
    return Checkpoint(
        origin,
        parse_decimal(size, "checkpoint size"),
        parse_hash(root, "checkpoint root hash"),
        tuple(extensions),
    )


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint with its verified note (log signature and any known cosignatures)."""

    checkpoint: Checkpoint
    note: VerifiedNote


def peek_checkpoint(data: bytes | str) -> Checkpoint:
    """Parse a signed checkpoint WITHOUT verifying it (e.g. to pick keys by origin)."""
    return parse_checkpoint(parse_note(data).text)


def open_checkpoint(data: bytes | str, verifiers: Iterable[NoteVerifier]) -> SignedCheckpoint:
    """Verify a signed checkpoint against known keys and parse it."""
    note = verify_note(data, verifiers)
    return SignedCheckpoint(parse_checkpoint(note.text), note)


# cosignature/v1


def cosignature_message(checkpoint_text: bytes, timestamp: int) -> bytes:
    """Return the signed message: 'cosignature/v1\\ntime <t>\\n' + checkpoint body."""
    if not 0 <= timestamp <= MAX_SIZE:
        raise CheckpointError(f"cosignature timestamp {timestamp} out of range")
    return f"{COSIGNATURE_HEADER}\ntime {timestamp}\n".encode("ascii") + checkpoint_text


def cosignature_timestamp(sig: NoteSignature) -> int:
    """Return the timestamp of a cosignature/v1 signature line."""
    if len(sig.signature) != 8 + 64:
        raise CheckpointError(f"cosignature by {sig.name!r} is not 72 bytes")
    return int.from_bytes(sig.signature[:8], "big")


@dataclass(frozen=True)
class CosignatureVerifier(PublicKeyVerifier):
    """Verifier for cosignature/v1 (Ed25519, signature type 0x04)."""

    SIG_TYPE: ClassVar[int] = SIG_COSIGNATURE_V1
    KIND: ClassVar[str] = "cosignature/v1 (0x04)"
    ERROR: ClassVar[type[Exception]] = CheckpointError

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Check a timestamped cosignature over checkpoint text."""
        if len(signature) != 72:
            return False
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > MAX_SIZE:
            return False
        return ed25519_verify(self._key, cosignature_message(text, timestamp), signature[8:])


@dataclass(frozen=True)
class CosignatureSigner(SeedSigner):
    """Witness key producing cosignature/v1 signatures, from a 32-byte Ed25519 seed."""

    SIG_TYPE: ClassVar[int] = SIG_COSIGNATURE_V1
    KIND: ClassVar[str] = "cosignature/v1 (0x04)"
    ERROR: ClassVar[type[Exception]] = CheckpointError

    def verifier(self) -> CosignatureVerifier:
        """Return the matching verifier."""
        return CosignatureVerifier(self.name, self.public_key)

    def sign_at(self, text: bytes, timestamp: int) -> bytes:
        """Return keyless signature bytes: u64be timestamp || Ed25519 signature."""
        message = cosignature_message(text, timestamp)
        return timestamp.to_bytes(8, "big") + self._key.sign(message)

    def at(self, timestamp: int) -> TimedCosigner:
        """Return a note signer that cosigns at the given time."""
        return TimedCosigner(self, timestamp)

    def cosign(self, checkpoint_text: str, timestamp: int) -> NoteSignature:
        """Return the cosignature line for checkpoint text at the given time."""
        check_text(checkpoint_text)
        sig = self.sign_at(checkpoint_text.encode("utf-8"), timestamp)
        return NoteSignature(self.name, self.key_id, sig)


@dataclass(frozen=True)
class TimedCosigner:
    """A cosigner bound to a timestamp, usable wherever a note signer is expected."""

    cosigner: CosignatureSigner
    timestamp: int

    @property
    def name(self) -> str:
        """Cosigner key name."""
        return self.cosigner.name

    @property
    def key_id(self) -> bytes:
        """Cosigner key ID."""
        return self.cosigner.key_id

    def sign(self, text: bytes) -> bytes:
        """Sign checkpoint text at the bound time."""
        return self.cosigner.sign_at(text, self.timestamp)


# tlog-witness add-checkpoint


@dataclass(frozen=True)
class AddCheckpointRequest:
    """Body of POST <prefix>/add-checkpoint: old size, consistency proof, signed checkpoint."""

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: bytes


def build_add_checkpoint(req: AddCheckpointRequest) -> bytes:
    """Return the add-checkpoint request body."""
    if len(req.proof) > MAX_PROOF_LINES:
        raise CheckpointError(f"consistency proof longer than {MAX_PROOF_LINES} lines")
    if any(len(h) != HASH_SIZE for h in req.proof) or not 0 <= req.old_size <= MAX_SIZE:
        raise CheckpointError("bad old size or proof hash")
    head = f"old {req.old_size}\n" + "".join(b64encode(h) + "\n" for h in req.proof)
    return head.encode("ascii") + b"\n" + req.checkpoint


def parse_add_checkpoint(body: bytes) -> AddCheckpointRequest:
    """Parse an add-checkpoint request body (the checkpoint is not verified here)."""
    lines, rest = _split_header_block(body, MAX_PROOF_LINES + 1, "add-checkpoint body")
    if not lines or not lines[0].startswith("old "):
        raise CheckpointError("add-checkpoint body must start with 'old <size>'")
    old = parse_decimal(lines[0][4:], "old size")
    proof = tuple(parse_hash(line, "consistency proof line") for line in lines[1:])
    if not rest:
        raise CheckpointError("add-checkpoint body has no checkpoint")
    return AddCheckpointRequest(old, proof, rest)


def _split_header_block(body: bytes, max_lines: int, what: str) -> tuple[list[str], bytes]:
    """Split '<line>\\n...<line>\\n\\n<rest>' into ASCII header lines and the rest."""
    lines, pos = [], 0
    while True:
        end = body.find(b"\n", pos)
        if end < 0:
            raise CheckpointError(f"{what} has no empty line before the checkpoint")
        if end == pos:
            return lines, body[end + 1 :]
        if len(lines) >= max_lines:
            raise CheckpointError(f"{what} has too many lines before the checkpoint")
        lines.append(_ascii_line(body[pos:end], what))
        pos = end + 1


def _ascii_line(raw: bytes, what: str) -> str:
    try:
        line = raw.decode("ascii")
    except UnicodeDecodeError:
        raise CheckpointError(f"{what} has a non-ASCII header line") from None
    if not line.isprintable():
        raise CheckpointError(f"{what} has a control character in a header line")
    return line


def build_tlog_size(size: int) -> str:
    """Return a text/x.tlog.size body (the 409 Conflict response of a witness)."""
    return f"{size}\n"


def parse_tlog_size(body: bytes) -> int:
    """Parse a text/x.tlog.size body."""
    if not body.endswith(b"\n"):
        raise CheckpointError("tlog size body must end with a newline")
    return parse_decimal(_ascii_line(body[:-1], "tlog size body"), "tlog size")


# tlog-proof


@dataclass(frozen=True)
class TlogProof:
    """An offline-verifiable proof: index, inclusion path, cosigned checkpoint, extra data."""

    index: int
    path: tuple[bytes, ...]
    checkpoint: bytes
    extra: bytes | None = None


def build_tlog_proof(proof: TlogProof) -> bytes:
    """Return the c2sp.org/tlog-proof@v1 text."""
    if not 0 <= proof.index <= MAX_SIZE or any(len(h) != HASH_SIZE for h in proof.path):
        raise CheckpointError("bad proof index or path hash")
    lines = [TLOG_PROOF_HEADER]
    if proof.extra is not None:
        lines.append(f"extra {b64encode(proof.extra)}")
    lines.append(f"index {proof.index}")
    lines.extend(b64encode(h) for h in proof.path)
    return ("\n".join(lines) + "\n\n").encode("ascii") + proof.checkpoint


def parse_tlog_proof(data: bytes) -> TlogProof:
    """Parse c2sp.org/tlog-proof@v1 text (the checkpoint is not verified here)."""
    lines, rest = _split_header_block(data, 3 + MAX_PROOF_LINES, "tlog-proof")
    if not lines or lines[0] != TLOG_PROOF_HEADER:
        raise CheckpointError(f"tlog-proof must start with {TLOG_PROOF_HEADER}")
    pos, extra = 1, None
    if len(lines) > 1 and lines[1].startswith("extra "):
        extra = _parse_extra(lines[1][6:])
        pos = 2
    if len(lines) <= pos or not lines[pos].startswith("index "):
        raise CheckpointError("tlog-proof has no 'index <i>' line")
    index = parse_decimal(lines[pos][6:], "tlog-proof index")
    path = tuple(parse_hash(line, "inclusion proof line") for line in lines[pos + 1 :])
    if not rest:
        raise CheckpointError("tlog-proof has no checkpoint")
    return TlogProof(index, path, rest, extra)


def _parse_extra(text: str) -> bytes:
    try:
        return b64decode_strict(text, "tlog-proof extra data")
    except MalformedNoteError as e:
        raise CheckpointError(str(e)) from None

