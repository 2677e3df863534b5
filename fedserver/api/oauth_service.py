"""OAuth 2 decisions: registering apps, authorization requests, codes with PKCE, the grants, revocation.

Secrets (client secrets, codes, tokens) are 32 random bytes, url-safe, shown once and stored
as SHA-256 digests. Codes live 10 minutes and are consumed by one atomic UPDATE.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode, urlsplit

import asyncpg

from ..auth import hash_secret
from ..repo import oauth as oauth_repo
from ..repo import stream_events
from ..repo.oauth import OAuthApp
from .scopes import ScopeError, check_allowed, format_scopes, parse_scopes

log = logging.getLogger("fedserver.oauth")

OOB = "urn:ietf:wg:oauth:2.0:oob"
CODE_TTL_SECONDS = 600
MAX_APP_NAME = 60
MAX_URI = 2000
MAX_REDIRECT_URIS = 10
MAX_STATE = 2000
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "vbscript", "file", "about", "blob"})
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


class OAuthError(Exception):
    """An OAuth failure: HTTP status, RFC 6749 error code and a description for people."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    scopes: tuple[str, ...]
    created_at: datetime

    def as_json(self) -> dict:
        """The token response Mastodon sends (Mastodon.py needs `scope`, Toot! needs `created_at`)."""
        return {"access_token": self.access_token, "token_type": "Bearer", "scope": format_scopes(self.scopes),
                "created_at": int(self.created_at.timestamp())}


@dataclass(frozen=True)
class AuthorizationRequest:
    """A checked `/oauth/authorize` request."""

    app: OAuthApp
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str | None


def new_secret() -> str:
    """32 random bytes, url-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def check_redirect_uri(uri: str) -> str:
    """The OOB marker or an absolute URI without a fragment (custom schemes welcome); ValueError otherwise."""
    uri = uri.strip()
    if uri == OOB:
        return uri
    if not uri or len(uri) > MAX_URI or any(ch.isspace() for ch in uri):
        raise ValueError(f"redirect URI {uri[:80]!r} must be a URI of at most {MAX_URI} characters")
    parts = urlsplit(uri)
    if not parts.scheme or not _SCHEME.match(parts.scheme) or parts.scheme.lower() in _FORBIDDEN_SCHEMES:
        raise ValueError(f"redirect URI {uri[:80]!r} needs a scheme such as https: or myapp:")
    if parts.fragment or "#" in uri:
        raise ValueError(f"redirect URI {uri[:80]!r} must not contain a fragment")
    if parts.scheme.lower() in ("http", "https") and not parts.hostname:
        raise ValueError(f"redirect URI {uri[:80]!r} has no host")
    return uri


def split_redirect_uris(raw: str | list[str]) -> list[str]:
    """Redirect URIs from a newline-separated string or a list, checked; ValueError when none or too many."""
    items = raw.splitlines() if isinstance(raw, str) else [line for item in raw for line in item.splitlines()]
    uris = list(dict.fromkeys(check_redirect_uri(item) for item in items if item.strip()))
    if not uris:
        raise ValueError("redirect_uris can't be blank")
    if len(uris) > MAX_REDIRECT_URIS:
        raise ValueError(f"at most {MAX_REDIRECT_URIS} redirect URIs")
    return uris


async def register_app(pool: asyncpg.Pool, *, name: str, website: str | None, redirect_uris: list[str],
                       scopes: tuple[str, ...]) -> tuple[OAuthApp, str]:
    """Create an app; returns it with its client secret (the only time the secret exists in clear)."""
    secret = new_secret()
    async with pool.acquire() as conn:
        app = await oauth_repo.insert_app(conn, name=name, website=website, redirect_uris=redirect_uris,
                                          scopes=format_scopes(scopes), client_id=new_secret(),
                                          secret_hash=hash_secret(secret))
    return app, secret


def secret_matches(app: OAuthApp, secret: str | None) -> bool:
    """Constant-time check of a client secret."""
    return bool(secret) and hmac.compare_digest(hash_secret(secret), app.secret_hash)  # type: ignore[arg-type]


async def find_client(conn: asyncpg.Connection, client_id: str | None) -> OAuthApp:
    """The app behind `client_id`, or OAuthError 401 invalid_client."""
    app = await oauth_repo.get_app_by_client_id(conn, client_id) if client_id and len(client_id) <= 256 else None
    if app is None:
        raise OAuthError(401, "invalid_client", "Client authentication failed: unknown client_id")
    return app


async def authenticate_client(conn: asyncpg.Connection, client_id: str | None, secret: str | None) -> OAuthApp:
    """The app, when its id and secret are right; OAuthError 401 invalid_client otherwise."""
    app = await find_client(conn, client_id)
    if not secret_matches(app, secret):
        raise OAuthError(401, "invalid_client", "Client authentication failed: wrong or missing client_secret")
    return app


def _scopes_within(raw: str | None, app: OAuthApp) -> tuple[str, ...]:
    try:
        requested = parse_scopes(raw)
        check_allowed(requested, app.scopes)
    except ScopeError as exc:
        raise OAuthError(400, "invalid_scope", str(exc)) from None
    return requested


async def issue_token(conn: asyncpg.Connection, app: OAuthApp, account_id: int | None,
                      scopes: tuple[str, ...], *, code_hash: bytes | None = None) -> TokenGrant:
    """A new access token for an account (or for the app itself), bought with the code `code_hash` if given."""
    token = new_secret()
    created = await oauth_repo.insert_token(conn, token_hash=hash_secret(token), app_id=app.id,
                                            account_id=account_id, scopes=format_scopes(scopes), code_hash=code_hash)
    return TokenGrant(token, scopes, created)


async def check_authorization_request(conn: asyncpg.Connection, query: dict[str, str]) -> AuthorizationRequest:
    """Validate the parameters of `/oauth/authorize` (OAuthError with a reason fit for the page)."""
    app = await find_client(conn, query.get("client_id"))
    redirect_uri = query.get("redirect_uri") or (app.redirect_uris[0] if len(app.redirect_uris) == 1 else "")
    if redirect_uri not in app.redirect_uris:
        raise OAuthError(400, "invalid_request", "redirect_uri is not one of the app's registered redirect URIs")
    if query.get("response_type", "code") != "code":
        raise OAuthError(400, "unsupported_response_type", "only response_type=code is supported")
    scopes = _scopes_within(query.get("scope") or query.get("scopes"), app)
    challenge = query.get("code_challenge") or None
    method = query.get("code_challenge_method") or ("plain" if challenge else None)
    if method is not None and method != "S256":
        raise OAuthError(400, "invalid_request", "code_challenge_method must be S256 (plain is not accepted)")
    if challenge is not None and not _CHALLENGE.match(challenge):
        raise OAuthError(400, "invalid_request", "code_challenge must be the base64url SHA-256 of the verifier")
    state = query.get("state")
    if state is not None and len(state) > MAX_STATE:
        raise OAuthError(400, "invalid_request", f"state is longer than {MAX_STATE} characters")
    return AuthorizationRequest(app, redirect_uri, scopes, state, challenge)


async def create_code(conn: asyncpg.Connection, request: AuthorizationRequest, account_id: int) -> str:
    """An authorization code for the approved request, valid for 10 minutes."""
    code = new_secret()
    await oauth_repo.delete_stale_codes(conn)
    await oauth_repo.insert_code(conn, code_hash=hash_secret(code), app_id=request.app.id, account_id=account_id,
                                 redirect_uri=request.redirect_uri, scopes=format_scopes(request.scopes),
                                 code_challenge=request.code_challenge, ttl_seconds=CODE_TTL_SECONDS)
    return code


def redirect_with(uri: str, params: dict[str, str | None]) -> str:
    """`uri` with `params` appended to its query (works for custom schemes such as myapp://cb)."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{uri}{'&' if '?' in uri else '?'}{query}"


def pkce_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 S256: base64url(sha256(verifier)) without padding equals the challenge."""
    if not _VERIFIER.match(verifier):
        return False
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return hmac.compare_digest(digest, challenge)


async def exchange_code(conn: asyncpg.Connection, *, client_id: str | None, secret: str | None, code: str | None,
                        redirect_uri: str | None, verifier: str | None) -> TokenGrant:
    """Trade a code for a token. The code is spent even when a later check fails."""
    app = await find_client(conn, client_id)
    if secret and not secret_matches(app, secret):
        raise OAuthError(401, "invalid_client", "Client authentication failed: wrong client_secret")
    if not code:
        raise OAuthError(400, "invalid_request", "code is required")
    code_hash = hash_secret(code) if len(code) <= 256 else None
    grant = await oauth_repo.consume_code(conn, code_hash, app.id) if code_hash else None
    if grant is None:
        if code_hash and await oauth_repo.revoke_token_of_used_code(conn, code_hash, app.id):
            log.warning("an authorization code was used again: the token it bought is revoked",
                        extra={"app": app.client_id})
        raise OAuthError(400, "invalid_grant", "The authorization code is invalid, expired or already used")
    # Every code was asked for with a redirect_uri (given, or the app's only one): RFC 6749 4.1.3.
    if redirect_uri != grant.redirect_uri:
        raise OAuthError(400, "invalid_grant", "redirect_uri is required and must be the one the code was issued for")
    if grant.code_challenge is not None:
        if not verifier or not pkce_matches(verifier, grant.code_challenge):
            raise OAuthError(400, "invalid_grant", "code_verifier does not match the code_challenge")
    elif not secret:
        raise OAuthError(401, "invalid_client", "client_secret is required (or use PKCE)")
    return await issue_token(conn, app, grant.account_id, grant.scopes, code_hash=code_hash)


async def client_credentials(conn: asyncpg.Connection, *, client_id: str | None, secret: str | None,
                             scope: str | None) -> TokenGrant:
    """A token for the app itself (no account)."""
    app = await authenticate_client(conn, client_id, secret)
    return await issue_token(conn, app, None, _scopes_within(scope, app))


def password_scopes(app: OAuthApp, scope: str | None) -> tuple[str, ...]:
    """The scopes a password grant asks for, checked against the app."""
    return _scopes_within(scope, app)


async def revoke(conn: asyncpg.Connection, *, client_id: str | None, secret: str | None, token: str | None) -> None:
    """Revoke one of the app's tokens; unknown tokens are fine (RFC 7009)."""
    app = await find_client(conn, client_id)
    if not secret_matches(app, secret):
        raise OAuthError(403, "unauthorized_client", "You are not authorized to revoke this token")
    if token and len(token) <= 512 and await oauth_repo.revoke_token(conn, hash_secret(token), app.id):
        await stream_events.publish_token_revoked(conn, hash_secret(token))  # its open streams close
