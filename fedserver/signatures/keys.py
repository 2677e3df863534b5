"""Key loading and the raw signature primitives, all on `cryptography` (OpenSSL)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from .common import SignatureError

# Keys below this size are forgeable; peers' keys are 2048 bits or more in practice.
MIN_RSA_BITS = 1024

PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class PublicKeyInfo:
    """A loaded RSA public key and its size in bits."""

    key: rsa.RSAPublicKey
    bits: int


def generate_rsa_keypair(bits: int = 2048) -> tuple[str, str]:
    """Generate an RSA key pair as (PKCS#8 private PEM, SubjectPublicKeyInfo public PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return private_pem.decode("ascii"), public_pem_of(key)


def public_pem_of(key: PrivateKey | PublicKey) -> str:
    """The SubjectPublicKeyInfo PEM of a key (as served in an actor's publicKeyPem)."""
    public = key.public_key() if isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)) else key
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode("ascii")


def load_public_key(pem: str | bytes, min_bits: int = MIN_RSA_BITS) -> PublicKeyInfo:
    """Load an RSA public key (SPKI or PKCS#1 PEM); raise SignatureError if unreadable, not RSA or too small."""
    key = _load_any_public(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureError("public key is not RSA")
    if key.key_size < min_bits:
        raise SignatureError(f"RSA key of {key.key_size} bits is too small")
    return PublicKeyInfo(key, key.key_size)


def load_private_key(pem: str | bytes) -> PrivateKey:
    """Load an unencrypted RSA or Ed25519 private key PEM; raise ValueError if unusable."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    return _load_private_cached(data)


@functools.lru_cache(maxsize=64)
def _load_private_cached(data: bytes) -> PrivateKey:
    """Parse a private key once; OpenSSL's consistency checks make loading slower than signing."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"unreadable private key: {exc}") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        raise ValueError("private key is neither RSA nor Ed25519")
    return key


def _load_any_public(pem: str | bytes) -> PublicKey:
    """Load an RSA or Ed25519 public key PEM; raise SignatureError."""
    try:
        data = pem.encode("ascii") if isinstance(pem, str) else pem  # UnicodeEncodeError is a ValueError
        key = serialization.load_pem_public_key(data.strip())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SignatureError("unreadable public key") from None
    if not isinstance(key, (rsa.RSAPublicKey, ed25519.Ed25519PublicKey)):
        raise SignatureError("unsupported public key type")
    return key


def coerce_public_key(key: str | bytes | PublicKeyInfo | PublicKey) -> PublicKey:
    """Accept a PEM, a PublicKeyInfo or a loaded key object; return the key object."""
    if isinstance(key, PublicKeyInfo):
        return key.key
    if isinstance(key, (str, bytes)):
        loaded = _load_any_public(key)
        if isinstance(loaded, rsa.RSAPublicKey) and loaded.key_size < MIN_RSA_BITS:
            raise SignatureError(f"RSA key of {loaded.key_size} bits is too small")
        return loaded
    if isinstance(key, (rsa.RSAPublicKey, ed25519.Ed25519PublicKey)):
        return key
    raise SignatureError("unsupported public key type")


def coerce_private_key(key: str | bytes | PrivateKey) -> PrivateKey:
    """Accept a PEM or a loaded private key object; return the key object."""
    if isinstance(key, (str, bytes)):
        return load_private_key(key)
    if isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        return key
    raise ValueError("unsupported private key type")


def rsa_sign(key: rsa.RSAPrivateKey, data: bytes, algorithm: str = "rsa-v1_5-sha256") -> bytes:
    """Sign with RSASSA-PKCS1-v1_5/SHA-256 or RSASSA-PSS/SHA-512 (RFC 9421 section 3.3.1)."""
    if algorithm == "rsa-pss-sha512":
        return key.sign(data, _pss(), hashes.SHA512())
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _pss() -> padding.PSS:
    """RSASSA-PSS with MGF1-SHA-512 and a 64-byte salt, as RFC 9421 fixes it."""
    return padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=64)


def verify_bytes(key: PublicKey, algorithm: str, data: bytes, signature: bytes) -> bool:
    """Check one signature over `data`; `algorithm` is an RFC 9421 name. Never raises on a mismatch."""
    try:
        if algorithm == "ed25519" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        elif algorithm == "rsa-v1_5-sha256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif algorithm == "rsa-pss-sha512" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, _pss(), hashes.SHA512())
        else:
            return False
    except InvalidSignature:
        return False
    return True
