"""Secrets handed to browsers and apps: made at random, stored only as digests, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_token() -> str:
    """A fresh random token (32 bytes, URL-safe base64: 43 characters)."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> bytes:
    """SHA-256 of a token, code or client secret: what the database keeps instead of the secret."""
    return hashlib.sha256(secret.encode()).digest()


def same_secret(expected: str, sent: object) -> bool:
    """Constant-time comparison of a secret with a form value (False for anything but a non-empty string)."""
    return bool(expected) and isinstance(sent, str) and hmac.compare_digest(expected.encode(), sent.encode())
