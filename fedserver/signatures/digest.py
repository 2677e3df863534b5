"""Body digests: the legacy `Digest` header (RFC 3230) and `Content-Digest` (RFC 9530)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from .common import SignatureError
from .structured import Item, StructuredFieldError, parse_dictionary, serialize_dictionary

# RFC 9530 algorithm names we check; other listed algorithms are ignored.
_CONTENT_DIGEST_ALGORITHMS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}


def digest_header(body: bytes) -> str:
    """The `Digest` header value Mastodon sends: "SHA-256=<base64 sha256(body)>"."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def content_digest_header(body: bytes, algorithm: str = "sha-256") -> str:
    """The RFC 9530 `Content-Digest` header value, e.g. "sha-256=:<base64>:"."""
    if algorithm not in _CONTENT_DIGEST_ALGORITHMS:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    digest = _CONTENT_DIGEST_ALGORITHMS[algorithm](body).digest()
    return serialize_dictionary({algorithm: Item(digest)})


def check_digest(value: str | None, body: bytes) -> None:
    """Check a `Digest` header against the body: a SHA-256 entry must be present and match."""
    if value is None:
        raise SignatureError("Digest header missing")
    offered = _parse_digest_list(value)
    if "sha-256" not in offered:
        raise SignatureError("Digest header has no SHA-256 value")
    try:
        given = base64.b64decode(offered["sha-256"], validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text (header bytes decoded with surrogateescape)
        raise SignatureError("Digest value is not base64") from None
    if not hmac.compare_digest(given, hashlib.sha256(body).digest()):
        raise SignatureError("Digest does not match the body")


def _parse_digest_list(value: str) -> dict[str, str]:
    """Split "ALG=value, ALG=value" into {lowercased alg: value}; refuse repeats and junk."""
    offered: dict[str, str] = {}
    for entry in value.split(","):
        name, sep, digest = entry.strip().partition("=")
        name = name.strip().lower()
        if not sep or not name:
            raise SignatureError("malformed Digest header")
        if name in offered:
            raise SignatureError(f"Digest header repeats {name}")
        offered[name] = digest.strip()
    return offered


def check_content_digest(value: str | None, body: bytes) -> None:
    """Check a `Content-Digest` header: a sha-256 or sha-512 entry must be present, and every such entry must match."""
    if value is None:
        raise SignatureError("Content-Digest header missing")
    try:
        members = parse_dictionary(value)
    except StructuredFieldError:
        raise SignatureError("malformed Content-Digest header") from None
    known = [name for name in members if name in _CONTENT_DIGEST_ALGORITHMS]
    if not known:
        raise SignatureError("Content-Digest has no sha-256 or sha-512 value")
    for name in known:
        member = members[name]
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise SignatureError("malformed Content-Digest header")
        expected = _CONTENT_DIGEST_ALGORITHMS[name](body).digest()
        if not hmac.compare_digest(member.value, expected):
            raise SignatureError("Content-Digest does not match the body")
