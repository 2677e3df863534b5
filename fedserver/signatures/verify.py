"""Verification entry points: pick the scheme, check everything key-independent, then the key."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import rsa

from .cavage import parse_cavage
from .common import Headers, HeadersLike, ParsedSignature, SignatureError
from .keys import PublicKey, PublicKeyInfo, coerce_public_key, verify_bytes
from .rfc9421 import parse_rfc9421


def parse_request_signature(
    method: str,
    path: str,
    headers: HeadersLike,
    body: bytes = b"",
    *,
    scheme: str = "https",
    authority: str | None = None,
    now: float | None = None,
) -> ParsedSignature:
    """Check everything but the key (RFC 9421 if Signature-Input, else draft-cavage); raise SignatureError."""
    # path: path with query exactly as received (aiohttp: request.raw_path); scheme and
    # authority (default: the Host header) say where we were reached, for @target-uri.
    view = Headers(headers)
    if "signature-input" in view:
        return parse_rfc9421(method, path, view, body, scheme=scheme, authority=authority, now=now)
    if "signature" in view:
        return parse_cavage(method, path, view, body, now=now)
    raise SignatureError("no signature")


def verify_parsed(
    parsed: ParsedSignature, public_key: str | bytes | PublicKeyInfo | PublicKey, algorithm: str | None = None,
) -> None:
    """Check a parsed signature with the signer's public key (PEM or loaded); raise SignatureError."""
    # algorithm (an RFC 9421 name) pins the algorithm when the key's metadata names one.
    key = coerce_public_key(public_key)
    algorithms = _algorithms(parsed, key)
    if algorithm:
        if algorithm not in algorithms:
            raise SignatureError(f"algorithm {algorithm} does not fit this signature and key")
        algorithms = (algorithm,)
    for text in parsed.signing_strings:
        for name in algorithms:
            if verify_bytes(key, name, text, parsed.signature):
                return
    raise SignatureError("signature does not match")


def _algorithms(parsed: ParsedSignature, key: PublicKey) -> tuple[str, ...]:
    """The RFC 9421 algorithms to try for this signature and key type."""
    is_rsa = isinstance(key, rsa.RSAPublicKey)
    if parsed.scheme == "draft-cavage":
        if parsed.algorithm == "rsa-sha256" and not is_rsa:
            raise SignatureError("rsa-sha256 signature but the key is not RSA")
        return ("rsa-v1_5-sha256",) if is_rsa else ("ed25519",)
    if parsed.algorithm:
        if parsed.algorithm.startswith("rsa") != is_rsa:
            raise SignatureError(f"{parsed.algorithm} signature but the key type differs")
        return (parsed.algorithm,)
    # No alg parameter: the key decides; Mastodon and Fedify use PKCS#1 v1.5, RFC 9421's examples PSS.
    return ("rsa-v1_5-sha256", "rsa-pss-sha512") if is_rsa else ("ed25519",)
