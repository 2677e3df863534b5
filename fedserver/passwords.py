"""Password hashing with scrypt (memory-hard, in the standard library through OpenSSL)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

# OWASP's password storage cheat sheet lists n=2**15, r=8, p=3 (32 MiB) as an equivalent
# floor to n=2**17, r=8, p=1; it costs about 0.3 s on one core of a small machine. A stored hash
# names its own parameters, so changing them never locks anyone out. The test suite lowers them
# for the accounts it makes (tests/conftest.py): real scrypt, a thousandth of the work.
PRODUCTION_COST = (2**15, 8, 3)
COST = PRODUCTION_COST
_MAXMEM = 128 * 1024 * 1024
MAX_PASSWORD_BYTES = 1024


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash`, all base64 without padding."""
    if not password:
        raise ValueError("the password is empty")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise ValueError(f"the password is longer than {MAX_PASSWORD_BYTES} bytes")
    salt = os.urandom(16)
    n, r, p = COST
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)
    return "$".join(["scrypt", str(n), str(r), str(p), _b64(salt), _b64(digest)])


def verify_password(password: str, stored: str | None) -> bool:
    """True when `password` matches the stored hash; constant-time compare."""
    if not stored or len(password.encode()) > MAX_PASSWORD_BYTES:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), maxmem=_MAXMEM, dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))
