"""OAuth endpoints: app registration, the token and revocation endpoints, authorization-server metadata."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from aiohttp import web

from ..app_keys import POOL, SETTINGS
from ..auth import LoginFailed, LoginPending, authenticate, client_address
from ..errors import HTTPError
from ..repo import oauth as oauth_repo
from . import entities
from .auth import current_auth, require_scopes
from .oauth_service import (
    OAuthError,
    authenticate_client,
    client_credentials,
    exchange_code,
    issue_token,
    password_scopes,
    register_app,
    revoke,
    split_redirect_uris,
)
from .params import Params, body_params
from .scopes import ALL_SCOPES, SUPPORTED_SCOPES, ScopeError, parse_scopes

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_WEBSITE = 2000


@web.middleware
async def oauth_error_middleware(request: web.Request, handler) -> web.StreamResponse:
    """OAuth failures as RFC 6749 JSON: `{"error": code, "error_description": text}`."""
    try:
        return await handler(request)
    except OAuthError as exc:
        headers = dict(_NO_STORE)
        if exc.status == 401:
            headers["WWW-Authenticate"] = f'Basic realm="fedserver", error="{exc.error}"'
        return web.json_response({"error": exc.error, "error_description": exc.description}, status=exc.status,
                                 headers=headers)


async def apps_post(request: web.Request) -> web.Response:
    """POST /api/v1/apps: register a client (JSON from toot, form from Mastodon.py)."""
    params = await body_params(request)
    name = params.string("client_name", max_len=60, required=True)
    website = params.string("website", max_len=MAX_WEBSITE) or None
    if website and not website.startswith(("https://", "http://")):
        raise HTTPError(422, "website must be an http(s) URL")
    try:
        uris = split_redirect_uris(_redirect_uris(params))
        scopes = parse_scopes(_scope_text(params))
    except (ValueError, ScopeError) as exc:
        raise HTTPError(422, str(exc)) from None
    app, secret = await register_app(request.config_dict[POOL], name=name.strip(), website=website,
                                     redirect_uris=uris, scopes=scopes)
    return web.json_response(entities.application(app, secret), headers=_NO_STORE)


def _redirect_uris(params: Params) -> str | list[str]:
    """A newline-separated string, `redirect_uris[]` or a JSON array (or the singular `redirect_uri`)."""
    name = "redirect_uris" if "redirect_uris" in params else "redirect_uri"
    raw = params.raw(name)
    if isinstance(raw, list):
        return params.strings(name, max_items=20)
    return params.string(name, max_len=20_000) or ""


def _scope_text(params: Params) -> str | None:
    raw = params.raw("scopes")
    if isinstance(raw, list):
        return " ".join(params.strings("scopes"))
    return params.string("scopes", max_len=2000)


@require_scopes(*sorted(ALL_SCOPES), user=False)
async def apps_verify_credentials_get(request: web.Request) -> web.Response:
    """GET /api/v1/apps/verify_credentials: the app behind the token."""
    caller = current_auth(request)
    assert caller is not None
    async with request.config_dict[POOL].acquire() as conn:
        app = await oauth_repo.get_app_by_id(conn, caller.app_id)
    if app is None:
        raise HTTPError(401, "The access token is invalid")
    return web.json_response(entities.application(app, None))


def _basic_credentials(request: web.Request) -> tuple[str | None, str | None]:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError(401, "invalid_client", "malformed HTTP Basic credentials") from None
    client_id, _, secret = decoded.partition(":")
    return unquote(client_id), unquote(secret)


async def _token_params(request: web.Request) -> Params:
    try:
        return await body_params(request)
    except HTTPError as exc:
        raise OAuthError(400, "invalid_request", exc.message) from None


def _field(params: Params, name: str) -> str | None:
    try:
        return params.string(name, max_len=4096)
    except HTTPError as exc:
        raise OAuthError(400, "invalid_request", exc.message) from None


async def token_post(request: web.Request) -> web.Response:
    """POST /oauth/token: authorization_code (+PKCE S256), client_credentials and password grants."""
    params = await _token_params(request)
    basic_id, basic_secret = _basic_credentials(request)
    client_id = basic_id or _field(params, "client_id")
    secret = basic_secret or _field(params, "client_secret")
    grant_type = _field(params, "grant_type")
    pool = request.config_dict[POOL]
    if grant_type == "password":
        grant = await _password_grant(request, params, client_id, secret)
    elif grant_type == "authorization_code":
        async with pool.acquire() as conn:
            grant = await exchange_code(conn, client_id=client_id, secret=secret, code=_field(params, "code"),
                                        redirect_uri=_field(params, "redirect_uri"),
                                        verifier=_field(params, "code_verifier"))
    elif grant_type == "client_credentials":
        async with pool.acquire() as conn:
            grant = await client_credentials(conn, client_id=client_id, secret=secret, scope=_field(params, "scope"))
    else:
        raise OAuthError(400, "unsupported_grant_type",
                         "grant_type must be authorization_code, client_credentials or password")
    return web.json_response(grant.as_json(), headers=_NO_STORE)


async def _password_grant(request: web.Request, params: Params, client_id: str | None, secret: str | None):
    settings = request.config_dict[SETTINGS]
    if not settings.api.password_grant:
        raise OAuthError(400, "unsupported_grant_type",
                         "The password grant is switched off on this server ([api] password_grant = false); "
                         "log in through /oauth/authorize (the authorization code flow) instead")
    pool = request.config_dict[POOL]
    async with pool.acquire() as conn:
        app = await authenticate_client(conn, client_id, secret)
    scopes = password_scopes(app, _field(params, "scope"))
    username, password = _field(params, "username"), _field(params, "password")
    if not username or not password:
        raise OAuthError(400, "invalid_request", "username and password are required")
    try:
        account = await authenticate(pool, settings, client_address(request, settings), username, password)
    except LoginFailed:
        raise OAuthError(400, "invalid_grant", "Invalid account name, email or password") from None
    except LoginPending:
        raise OAuthError(403, "access_denied", "Your login is currently pending approval") from None
    async with pool.acquire() as conn:
        return await issue_token(conn, app, account.id, scopes)


async def revoke_post(request: web.Request) -> web.Response:
    """POST /oauth/revoke: revoke a token of the calling app; `{}` even for unknown tokens (RFC 7009)."""
    params = await _token_params(request)
    basic_id, basic_secret = _basic_credentials(request)
    async with request.config_dict[POOL].acquire() as conn:
        await revoke(conn, client_id=basic_id or _field(params, "client_id"),
                     secret=basic_secret or _field(params, "client_secret"), token=_field(params, "token"))
    return web.json_response({}, headers=_NO_STORE)


async def metadata_get(request: web.Request) -> web.Response:
    """GET /.well-known/oauth-authorization-server (RFC 8414), as Mastodon 4.3 serves it."""
    settings = request.config_dict[SETTINGS]
    base = settings.base_url
    grants = ["authorization_code", "client_credentials"] + (["password"] if settings.api.password_grant else [])
    document = {
        "issuer": f"{base}/",
        "service_documentation": "https://docs.joinmastodon.org/",
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "app_registration_endpoint": f"{base}/api/v1/apps",
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grants,
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
    }
    return web.json_response(document, headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "max-age=300"})
