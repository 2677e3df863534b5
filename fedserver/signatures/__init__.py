"""HTTP signatures for federation: draft-cavage (as Mastodon) and RFC 9421, signing and verifying.

Pure: no aiohttp, no database, no network. Verification is two steps so the caller can fetch
the key in between::

    parsed = parse_request_signature(method, path_qs, headers, body, authority=host)
    key_pem = await fetch_key(key_owner_url(parsed.key_id))  # caller's I/O
    verify_parsed(parsed, key_pem)                            # raises SignatureError
"""

from .cavage import sign_request
from .common import (
    ParsedSignature, SignatureError, http_date, key_owner_url, parse_http_date, split_target_url,
)
from .digest import content_digest_header, digest_header
from .keys import (
    PublicKeyInfo, generate_rsa_keypair, load_private_key, load_public_key, public_pem_of,
)
from .rfc9421 import AcceptSignature, parse_accept_signature, sign_request_rfc9421
from .verify import parse_request_signature, verify_parsed

__all__ = [
    "AcceptSignature",
    "ParsedSignature",
    "PublicKeyInfo",
    "SignatureError",
    "content_digest_header",
    "digest_header",
    "generate_rsa_keypair",
    "http_date",
    "key_owner_url",
    "load_private_key",
    "load_public_key",
    "parse_accept_signature",
    "parse_http_date",
    "parse_request_signature",
    "public_pem_of",
    "sign_request",
    "sign_request_rfc9421",
    "split_target_url",
    "verify_parsed",
]
