"""draft-cavage-http-signatures, as Mastodon signs and checks it (app/lib/request.rb, signed_request.rb)."""

from __future__ import annotations

import base64
import re

from cryptography.hazmat.primitives.asymmetric import rsa

from .common import (
    Headers, HeadersLike, ParsedSignature, SignatureError, check_time_window, http_date, now_or,
    parse_http_date, to_bytes,
)
from .digest import check_digest, digest_header
from .keys import PrivateKey, coerce_private_key, rsa_sign

ACTIVITY_JSON = "application/activity+json"
# What Mastodon asks for when it fetches ActivityPub documents.
ACCEPT_ACTIVITY = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
POST_HEADERS = ("(request-target)", "host", "date", "digest", "content-type")
GET_HEADERS = ("(request-target)", "host", "date", "accept")
SUPPORTED_ALGORITHMS = ("rsa-sha256", "hs2019")

_ESCAPE = re.compile(r"\\(.)")
# The quoted-string alternative is written as an unrolled loop: a per-character
# alternation made this regex the slowest step of the inbox (about 28 us per header).
_PARAM = re.compile(r'[ \t]*([A-Za-z][A-Za-z0-9_-]*)[ \t]*=[ \t]*("[^"\\]*(?:\\.[^"\\]*)*"|[^,"\s]*)[ \t]*')
# The shape Mastodon, Fedify and most servers send: name="value" pairs joined by bare commas.
_PLAIN_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)="([^"\\]*)"')


def sign_request(
    method: str,
    path: str,
    headers: HeadersLike,
    body: bytes = b"",
    *,
    key_id: str,
    private_key: str | bytes | PrivateKey,
    host: str | None = None,
    now: float | None = None,
) -> dict[str, str]:
    """Sign like Mastodon and return the headers to add (Host, Date, Digest, Content-Type or Accept, Signature)."""
    # A POST (or any request with a body) signs "(request-target) host date digest content-type",
    # others "(request-target) host date accept". ValueError if no Host header and no host.
    view = Headers(headers)
    added = _headers_to_add(method, view, body, host, now)
    names = POST_HEADERS if _has_body(method, body) else GET_HEADERS
    merged = Headers([*_pairs(view), *added.items()])
    text = _signing_string(names, method, path, merged, with_query=True)
    key = coerce_private_key(private_key)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("draft-cavage rsa-sha256 signing needs an RSA key")
    signature = base64.b64encode(rsa_sign(key, text)).decode("ascii")
    added["Signature"] = (
        f'keyId="{_quote(key_id)}",algorithm="rsa-sha256",headers="{" ".join(names)}",signature="{signature}"')
    return added


def _headers_to_add(method: str, view: Headers, body: bytes, host: str | None, now: float | None) -> dict[str, str]:
    """The Host, Date, Digest and Content-Type/Accept headers still missing from the request."""
    added: dict[str, str] = {}
    if "host" not in view:
        if not host:
            raise ValueError("a Host header or the host argument is required to sign")
        added["Host"] = host
    if "date" not in view:
        added["Date"] = http_date(now)
    if _has_body(method, body):
        added["Digest"] = digest_header(body)  # always recomputed: a stale Digest would be signed
        if "content-type" not in view:
            added["Content-Type"] = ACTIVITY_JSON
    elif "accept" not in view:
        added["Accept"] = ACCEPT_ACTIVITY
    return added


def _pairs(view: Headers) -> list[tuple[str, str]]:
    """The view's fields as (name, value) pairs, dropping any Digest that will be replaced."""
    return [(name, value) for name, value in view.items() if name != "digest"]


def _has_body(method: str, body: bytes) -> bool:
    """A POST, or any request carrying bytes, must sign its digest."""
    return method.upper() == "POST" or bool(body)


def _quote(value: str) -> str:
    """Escape a value for a quoted Signature parameter."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def parse_signature_header(value: str) -> dict[str, str]:
    """Parse `k="v",k2=v2` into {lowercased name: value}; raise SignatureError on junk or repeats."""
    plain = _parse_plain(value)
    return plain if plain is not None else _parse_general(value)


def _parse_general(value: str) -> dict[str, str]:
    """Any shape the grammar allows: optional whitespace, tokens, escapes."""
    params: dict[str, str] = {}
    pos = 0
    while pos < len(value):
        match = _PARAM.match(value, pos)
        if not match or not match.group(0).strip():
            raise SignatureError("malformed Signature header")
        name, raw = match.group(1).lower(), match.group(2)
        if name in params:
            raise SignatureError(f"Signature header repeats {name}")
        params[name] = _unquote(raw)
        pos = match.end()
        if pos < len(value):
            if value[pos] != ",":
                raise SignatureError("malformed Signature header")
            pos += 1
    return params


def _parse_plain(value: str) -> dict[str, str] | None:
    """The common shape in one pass, or None to let the general parser decide (and explain)."""
    pairs = _PLAIN_PARAM.findall(value)
    if not pairs or ",".join(f'{name}="{raw}"' for name, raw in pairs) != value:
        return None
    params = {name.lower(): raw for name, raw in pairs}
    return params if len(params) == len(pairs) else None


def _unquote(raw: str) -> str:
    """Strip quotes and backslash escapes from a parameter value."""
    if not raw.startswith('"'):
        return raw
    inner = raw[1:-1]
    return _ESCAPE.sub(r"\1", inner) if "\\" in inner else inner


def parse_cavage(
    method: str, path: str, headers: Headers, body: bytes, *, now: float | None = None,
) -> ParsedSignature:
    """Parse and check a draft-cavage `Signature` header (everything but the key); raise SignatureError."""
    params = parse_signature_header(headers.get("signature") or "")
    key_id, signature = _required(params)
    algorithm = params.get("algorithm", "hs2019").lower()
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise SignatureError(f"unsupported signature algorithm {algorithm} (only rsa-sha256 and hs2019)")
    names = _signed_names(params, algorithm)
    _check_strength(names, method, body)
    _check_present(names, headers, params)
    created, expires = _check_times(names, headers, params, now_or(now))
    if "digest" in names:
        check_digest(headers.get("digest"), body)
    return ParsedSignature(
        scheme="draft-cavage", key_id=key_id, algorithm=algorithm, covered=names, signature=signature,
        signing_strings=_candidates(names, method, path, headers, params), created=created, expires=expires)


def _required(params: dict[str, str]) -> tuple[str, bytes]:
    """keyId and signature must be present; the signature must be base64."""
    missing = [name for name in ("keyId", "signature") if not params.get(name.lower())]
    if missing:
        raise SignatureError(f"Signature header lacks {' and '.join(missing)}")
    try:
        signature = base64.b64decode(params["signature"], validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text (header bytes decoded with surrogateescape)
        raise SignatureError("signature is not valid base64") from None
    return params["keyid"], signature


def _signed_names(params: dict[str, str], algorithm: str) -> tuple[str, ...]:
    """The signed header list (Mastodon's default when absent), with pseudo-headers checked."""
    default = "(created)" if algorithm == "hs2019" else "date"
    names = tuple(params.get("headers", default).lower().split())
    if not names:
        raise SignatureError("Signature header lists no signed headers")
    for pseudo in ("(created)", "(expires)"):
        if pseudo in names and algorithm != "hs2019":
            raise SignatureError(f"pseudo-header {pseudo} is only allowed with hs2019")
    return names


def _check_strength(names: tuple[str, ...], method: str, body: bytes) -> None:
    """Mastodon's minimum coverage: a time, the target or digest, host on GET, digest with a body."""
    if "date" not in names and "(created)" not in names:
        raise SignatureError("signature must cover date or (created)")
    if "(request-target)" not in names and "digest" not in names:
        raise SignatureError("signature must cover (request-target) or digest")
    if method.upper() == "GET" and "host" not in names:
        raise SignatureError("signature of a GET must cover host")
    if _has_body(method, body) and "digest" not in names:
        raise SignatureError("signature of a request with a body must cover digest")


def _check_present(names: tuple[str, ...], headers: Headers, params: dict[str, str]) -> None:
    """Every signed header, and the parameter behind each pseudo-header, must be present."""
    for name in names:
        if name in ("(created)", "(expires)"):
            if not params.get(name[1:-1]):
                raise SignatureError(f"pseudo-header {name} is signed but its parameter is missing")
        elif name != "(request-target)" and name not in headers:
            raise SignatureError(f"signed header {name} is missing")


def _check_times(
    names: tuple[str, ...], headers: Headers, params: dict[str, str], now: float,
) -> tuple[float, float | None]:
    """Check every signed time source against the window; return (created, expires)."""
    expires = _int_param(params, "expires") if "(expires)" in names else None
    times = []
    if "(created)" in names:
        times.append(float(_int_param(params, "created")))
    if "date" in names:
        try:
            times.append(parse_http_date(headers.get("date") or ""))
        except ValueError:
            raise SignatureError("invalid Date header") from None
    for created in times:
        check_time_window(created, expires, now)
    return times[0], expires


def _int_param(params: dict[str, str], name: str) -> int:
    """An integer (created/expires) parameter."""
    value = params.get(name, "")
    # At most 15 digits, as RFC 8941 Integers: int() refuses over 4,300 digits, float() overflows past 308.
    if not (value.isascii() and value.isdigit()) or len(value) > 15:
        raise SignatureError(f"Signature parameter {name} is not an integer of at most 15 digits")
    return int(value)


def _candidates(
    names: tuple[str, ...], method: str, path: str, headers: Headers, params: dict[str, str],
) -> tuple[bytes, ...]:
    """The signing string with the query in (request-target), then without it (older Mastodon)."""
    first = _signing_string(names, method, path, headers, with_query=True, params=params)
    if "?" not in path or "(request-target)" not in names:
        return (first,)
    return first, _signing_string(names, method, path, headers, with_query=False, params=params)


def _signing_string(
    names: tuple[str, ...], method: str, path: str, headers: Headers, *, with_query: bool,
    params: dict[str, str] | None = None,
) -> bytes:
    """Build the newline-joined "name: value" string that is signed."""
    lines = []
    for name in names:
        if name == "(request-target)":
            target = path if with_query else path.split("?", 1)[0]
            lines.append(f"(request-target): {method.lower()} {target}")
        elif name in ("(created)", "(expires)"):
            lines.append(f"{name}: {(params or {})[name[1:-1]]}")
        else:
            lines.append(f"{name}: {headers.get(name)}")
    return to_bytes("\n".join(lines))
