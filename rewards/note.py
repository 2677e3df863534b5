"""C2SP signed-note v1.0.0: Ed25519 keys, vkeys, signing and verification.

A note is UTF-8 text ending in a newline, a blank line, then signature lines
``— <key name> base64(keyID || signature)``. Key types are pluggable: anything with
``name``, ``key_id`` and ``verify(text, signature)`` is a ``NoteVerifier``
(``rewards.checkpoint`` adds cosignature/v1 keys).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

EM_DASH = "\u2014"
SIG_ED25519 = 0x01
SIG_COSIGNATURE_V1 = 0x04
KEY_ID_SIZE = 4
ED25519_KEY_SIZE = 32
MAX_SIGNATURES = 100
_SKEY_PREFIX = "PRIVATE+KEY+"


class NoteError(ValueError):
    """Base class for signed-note errors."""


class MalformedNoteError(NoteError):
    """The note, signature line or key text does not follow the format."""


class UnverifiedNoteError(NoteError):
    """No known key verified the note, or a known key's signature was invalid."""


def b64decode_strict(text: str, what: str = "base64") -> bytes:
    """Decode canonical standard base64 (RFC 4648 §4), raising MalformedNoteError."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise MalformedNoteError(f"{what} is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise MalformedNoteError(f"{what} is not canonical base64")
    return raw


def b64encode(data: bytes) -> str:
    """Encode bytes as standard padded base64 text."""
    return base64.b64encode(data).decode("ascii")


def check_key_name(name: str) -> None:
    """Reject key names that are empty or contain spaces, '+' or control characters."""
    if not name:
        raise MalformedNoteError("key name is empty")
    if any(c == "+" or c.isspace() or _is_control(c) for c in name):
        raise MalformedNoteError(f"key name {name!r} contains a space, '+' or control character")


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """Return SHA-256(name || 0x0A || sig_type || public_key)[:4]."""
    material = name.encode("utf-8") + b"\n" + bytes([sig_type]) + public_key
    return hashlib.sha256(material).digest()[:KEY_ID_SIZE]


_CONTROL_EXCEPT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f]")


def _is_control(c: str) -> bool:
    return ord(c) < 0x20 or ord(c) == 0x7F


# Keys


@dataclass(frozen=True)
class VerifierKey:
    """A decoded vkey: name+hex(keyID)+base64(sig_type || public_key)."""

    name: str
    key_id: bytes
    sig_type: int
    public_key: bytes

    def encode(self) -> str:
        """Return the vkey text."""
        material = b64encode(bytes([self.sig_type]) + self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{material}"


def parse_vkey(text: str) -> VerifierKey:
    """Parse a vkey; for Ed25519 types the key ID must match its derivation."""
    key = _split_key(text, "vkey")
    _check_ed25519_key(key)
    return key


def _split_key(text: str, what: str) -> VerifierKey:
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise MalformedNoteError(f"{what} does not have three '+'-separated parts")
    name, hex_id, material = parts
    check_key_name(name)
    if len(hex_id) != 2 * KEY_ID_SIZE or hex_id != hex_id.lower():
        raise MalformedNoteError(f"{what} key ID {hex_id!r} is not 8 lowercase hex digits")
    try:
        kid = bytes.fromhex(hex_id)
    except ValueError:
        raise MalformedNoteError(f"{what} key ID {hex_id!r} is not hex") from None
    raw = b64decode_strict(material, f"{what} key material")
    if len(raw) < 2:
        raise MalformedNoteError(f"{what} key material is too short")
    return VerifierKey(name, kid, raw[0], raw[1:])


@dataclass(frozen=True)
class SignerKey:
    """A decoded private key: PRIVATE+KEY+name+hex(keyID)+base64(sig_type || seed)."""

    name: str
    key_id: bytes
    sig_type: int
    seed: bytes = field(repr=False)

    def encode(self) -> str:
        """Return the private key text (keep secret)."""
        return _SKEY_PREFIX + VerifierKey(self.name, self.key_id, self.sig_type, self.seed).encode()


def parse_skey(text: str) -> SignerKey:
    """Parse private key text in the Go sumdb/note form (key ID is not checked here)."""
    if not text.startswith(_SKEY_PREFIX):
        raise MalformedNoteError("signer key does not start with PRIVATE+KEY+")
    key = _split_key(text[len(_SKEY_PREFIX) :], "signer key")
    return SignerKey(key.name, key.key_id, key.sig_type, key.public_key)


def _check_ed25519_key(key: VerifierKey) -> None:
    if key.sig_type not in (SIG_ED25519, SIG_COSIGNATURE_V1):
        return
    if len(key.public_key) != ED25519_KEY_SIZE:
        raise MalformedNoteError(f"Ed25519 key for {key.name!r} is not 32 bytes")
    if key_id(key.name, key.sig_type, key.public_key) != key.key_id:
        raise MalformedNoteError(f"vkey key ID for {key.name!r} does not match the key")


class NoteVerifier(Protocol):
    """Anything that can check one note signature."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def verify(self, text: bytes, signature: bytes) -> bool: ...


class NoteSigner(Protocol):
    """Anything that can produce one note signature (without the key ID prefix)."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def sign(self, text: bytes) -> bytes: ...


def ed25519_verify(public_key: Ed25519PublicKey, message: bytes, signature: bytes) -> bool:
    """Return True if signature is a valid Ed25519 signature of message."""
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class PublicKeyVerifier:
    """An Ed25519 public key, named and typed as one verifier role."""

    SIG_TYPE: ClassVar[int] = SIG_ED25519
    KIND: ClassVar[str] = "Ed25519 (0x01)"
    ERROR: ClassVar[type[Exception]] = MalformedNoteError

    name: str
    public_key: bytes
    key_id: bytes = field(init=False)
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.public_key) != ED25519_KEY_SIZE:
            raise self.ERROR(f"{self.KIND} public key must be 32 bytes")
        object.__setattr__(self, "key_id", key_id(self.name, self.SIG_TYPE, self.public_key))
        object.__setattr__(self, "_key", Ed25519PublicKey.from_public_bytes(self.public_key))

    @classmethod
    def from_vkey(cls, text: str) -> Self:
        """Build a verifier from a vkey of this signature type."""
        key = parse_vkey(text)
        if key.sig_type != cls.SIG_TYPE:
            raise cls.ERROR(f"vkey for {key.name!r} is not an {cls.KIND} key")
        return cls(key.name, key.public_key)

    def vkey(self) -> str:
        """Return this key as vkey text."""
        return VerifierKey(self.name, self.key_id, self.SIG_TYPE, self.public_key).encode()


@dataclass(frozen=True)
class Ed25519Verifier(PublicKeyVerifier):
    """Verifier for Ed25519 note signatures (signature type 0x01)."""

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Check an Ed25519 signature over the note text."""
        return len(signature) == 64 and ed25519_verify(self._key, text, signature)


@dataclass(frozen=True)
class SeedSigner:
    """An Ed25519 private key from a 32-byte RFC 8032 seed, named and typed as one signer role."""

    SIG_TYPE: ClassVar[int] = SIG_ED25519
    KIND: ClassVar[str] = "Ed25519 (0x01)"
    ERROR: ClassVar[type[Exception]] = MalformedNoteError

    name: str
    seed: bytes = field(repr=False)
    public_key: bytes = field(init=False)
    key_id: bytes = field(init=False)
    _key: Ed25519PrivateKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.seed) != ED25519_KEY_SIZE:
            raise self.ERROR(f"{self.KIND} seed must be 32 bytes")
        key = Ed25519PrivateKey.from_private_bytes(self.seed)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "public_key", key.public_key().public_bytes_raw())
        object.__setattr__(self, "key_id", key_id(self.name, self.SIG_TYPE, self.public_key))

    @classmethod
    def generate(cls, name: str) -> Self:
        """Create a signer with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def from_skey(cls, text: str) -> Self:
        """Parse PRIVATE+KEY+name+hex(keyID)+base64(type || seed) (Go sumdb/note form)."""
        key = parse_skey(text)
        if key.sig_type != cls.SIG_TYPE:
            raise cls.ERROR(f"signer key is not an {cls.KIND} key")
        signer = cls(key.name, key.seed)
        if signer.key_id != key.key_id:
            raise cls.ERROR("signer key ID does not match the key")
        return signer

    def skey(self) -> str:
        """Return the private key text (keep secret)."""
        return SignerKey(self.name, self.key_id, self.SIG_TYPE, self.seed).encode()


@dataclass(frozen=True)
class Ed25519Signer(SeedSigner):
    """Signer for Ed25519 note signatures."""

    def verifier(self) -> Ed25519Verifier:
        """Return the matching verifier."""
        return Ed25519Verifier(self.name, self.public_key)

    def sign(self, text: bytes) -> bytes:
        """Sign the note text."""
        return self._key.sign(text)


# Notes


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, key ID and the signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """Return the signature line, including its final newline."""
        return f"{EM_DASH} {self.name} {b64encode(self.key_id + self.signature)}\n"


@dataclass(frozen=True)
class Note:
    """A parsed note: text (ending in a newline) and its signatures."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def encode(self) -> bytes:
        """Return the signed note bytes."""
        sigs = "".join(s.line() for s in self.signatures)
        return (self.text + "\n" + sigs).encode("utf-8")


def check_text(text: str) -> None:
    """Reject note text that lacks a final newline or has ASCII control characters."""
    if not text.endswith("\n"):
        raise MalformedNoteError("note text must end with a newline")
    found = _CONTROL_EXCEPT_NEWLINE.search(text)  # a regex: a per-character loop cost ~0.3 ms per receipt
    if found is not None:
        raise MalformedNoteError(f"note contains control character U+{ord(found.group()):04X}")


def parse_signature_line(line: str) -> NoteSignature:
    """Parse one signature line (without its newline)."""
    if not line.startswith(EM_DASH + " "):
        raise MalformedNoteError("signature line must start with an em dash and a space")
    parts = line[2:].split(" ")
    if len(parts) != 2:
        raise MalformedNoteError("signature line must be '— <name> <base64>'")
    name, b64 = parts
    check_key_name(name)
    raw = b64decode_strict(b64, "signature")
    if len(raw) <= KEY_ID_SIZE:
        raise MalformedNoteError("signature is too short")
    return NoteSignature(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:])


def parse_signature_lines(block: str) -> tuple[NoteSignature, ...]:
    """Parse newline-terminated signature lines, e.g. a tlog-witness response body."""
    if not block.endswith("\n"):
        raise MalformedNoteError("signature lines must end with a newline")
    check_text(block)
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(f"more than {MAX_SIGNATURES} signatures")
    return tuple(parse_signature_line(line) for line in lines)


def _decode(data: bytes | str) -> str:
    try:
        if isinstance(data, str):
            data.encode("utf-8")  # rejects lone surrogates
            return data
        return data.decode("utf-8")
    except UnicodeError:
        raise MalformedNoteError("note is not valid UTF-8") from None


def parse_note(data: bytes | str) -> Note:
    """Split a signed note into text and signatures (does not verify them)."""
    message = _decode(data)
    check_text(message)
    split = message.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("note has no blank line before its signatures")
    text, block = message[: split + 1], message[split + 2 :]
    if not block:
        raise MalformedNoteError("note has no signatures")
    return Note(text, parse_signature_lines(block))


def sign_note(text: str, signers: Iterable[NoteSigner]) -> bytes:
    """Sign text with each signer and return the signed note bytes."""
    check_text(text)
    sigs = tuple(_sign(text, s) for s in signers)
    if not sigs:
        raise NoteError("at least one signer is required")
    return Note(text, sigs).encode()


def add_signatures(data: bytes | str, signers: Iterable[NoteSigner]) -> bytes:
    """Add signatures to a signed note, replacing earlier ones by the same keys."""
    note = parse_note(data)
    return with_signatures(note, [_sign(note.text, s) for s in signers]).encode()


def with_signatures(note: Note, extra: Sequence[NoteSignature]) -> Note:
    """Return the note with extra signatures appended (same name and key ID replaced)."""
    keys = {(s.name, s.key_id) for s in extra}
    kept = tuple(s for s in note.signatures if (s.name, s.key_id) not in keys)
    sigs = kept + tuple(extra)
    if len(sigs) > MAX_SIGNATURES:
        raise MalformedNoteError(f"more than {MAX_SIGNATURES} signatures")
    return Note(note.text, sigs)


def _sign(text: str, signer: NoteSigner) -> NoteSignature:
    check_key_name(signer.name)
    return NoteSignature(signer.name, signer.key_id, signer.sign(text.encode("utf-8")))


@dataclass(frozen=True)
class VerifiedNote:
    """A note whose text is vouched for by at least one known key."""

    text: str
    verified: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...]

    def verified_names(self) -> frozenset[str]:
        """Return the names of the keys whose signatures verified."""
        return frozenset(s.name for s in self.verified)


def verify_note(data: bytes | str | Note, verifiers: Iterable[NoteVerifier]) -> VerifiedNote:
    """Verify a signed note against known keys; unknown keys are ignored.

    Raises UnverifiedNoteError if a known key's signature is invalid or if no
    known key signed the note, and MalformedNoteError for format errors.
    """
    note = data if isinstance(data, Note) else parse_note(data)
    known = _index_verifiers(verifiers)
    raw = note.text.encode("utf-8")
    verified: dict[tuple[str, bytes], NoteSignature] = {}
    unverified = []
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            unverified.append(sig)
        elif (sig.name, sig.key_id) not in verified:
            if not verifier.verify(raw, sig.signature):
                raise UnverifiedNoteError(f"invalid signature by known key {sig.name!r}")
            verified[(sig.name, sig.key_id)] = sig
    if not verified:
        raise UnverifiedNoteError("note has no signature from a known key")
    return VerifiedNote(note.text, tuple(verified.values()), tuple(unverified))


def _index_verifiers(verifiers: Iterable[NoteVerifier]) -> dict[tuple[str, bytes], NoteVerifier]:
    known: dict[tuple[str, bytes], NoteVerifier] = {}
    for v in verifiers:
        slot = (v.name, v.key_id)
        if slot in known and known[slot] != v:
            raise NoteError(f"two different known keys share name {v.name!r} and key ID")
        known[slot] = v
    return known
