"""RFC 9421 HTTP Message Signatures for requests: signature bases, Mastodon's verification
policy (app/lib/signed_request.rb HttpMessageSignature), signing, and Accept-Signature."""

from __future__ import annotations

import base64
import string
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from cryptography.hazmat.primitives.asymmetric import ed25519

from .common import (
    Headers, HeadersLike, ParsedSignature, SignatureError, check_time_window, http_date,
    normalize_authority, now_or, to_bytes,
)
from .digest import check_content_digest, content_digest_header
from .keys import PrivateKey, coerce_private_key, rsa_sign
from .structured import (
    InnerList, Item, Params, StructuredFieldError, Token, parse_dictionary, serialize_inner_list,
    serialize_item,
)

SUPPORTED_ALGORITHMS = ("rsa-v1_5-sha256", "rsa-pss-sha512", "ed25519")
REQUIRED_COMPONENTS = ("@method", "@target-uri")
SIGN_COMPONENTS = ("@method", "@target-uri", "@authority", "content-digest", "date")
_DERIVED = ("@method", "@target-uri", "@authority", "@scheme", "@request-target", "@path", "@query",
            "@query-param")
_FORM_SAFE = set((string.ascii_letters + string.digits + "*-._").encode("ascii"))


@dataclass(frozen=True)
class Target:
    """The request a signature base is computed over."""

    method: str
    path: str  # path with query, as received
    headers: Headers
    scheme: str
    authority: str | None  # None: taken from the Host header


@dataclass(frozen=True)
class AcceptSignature:
    """One signature a peer asks for in Accept-Signature."""

    label: str
    components: tuple[Item, ...]
    params: Params

    @property
    def component_names(self) -> tuple[str, ...]:
        """The requested component names, without their parameters."""
        return tuple(str(item.value) for item in self.components)


def _authority(target: Target) -> str:
    """The normalised authority the request was received at."""
    authority = target.authority or target.headers.get("host")
    if not authority:
        raise SignatureError("request authority unknown (no Host header)")
    return normalize_authority(authority, target.scheme)


def _split_path(path: str) -> tuple[str, str | None]:
    """Split a path-with-query into (path, query or None)."""
    base, sep, query = path.partition("?")
    return base or "/", (query if sep else None)


def _form_encode(raw: bytes) -> str:
    """Percent-encode with the application/x-www-form-urlencoded set, spaces as %20 (RFC 9421 2.2.8)."""
    return "".join(chr(b) if b in _FORM_SAFE else f"%{b:02X}" for b in raw)


def _query_param(target: Target, name: str) -> str:
    """The single re-encoded value of query parameter `name`."""
    query = _split_path(target.path)[1] or ""
    values = []
    for part in query.split("&") if query else ():
        key, _, value = part.partition("=")
        if _form_encode(unquote_to_bytes(key.replace("+", " "))) == name:
            values.append(_form_encode(unquote_to_bytes(value.replace("+", " "))))
    if len(values) != 1:
        raise SignatureError(f"query parameter {name} is absent or repeated")
    return values[0]


def _derived_value(target: Target, component: Item) -> str:
    """The value of a derived (@-prefixed) component."""
    name = str(component.value)
    path, query = _split_path(target.path)
    if name == "@query-param":
        param = component.param("name")
        if not isinstance(param, str) or isinstance(param, Token):
            raise SignatureError("@query-param needs a name parameter")
        return _query_param(target, param)
    values = {
        "@method": lambda: target.method,
        "@target-uri": lambda: f"{target.scheme.lower()}://{_authority(target)}{target.path}",
        "@authority": lambda: _authority(target),
        "@scheme": lambda: target.scheme.lower(),
        "@request-target": lambda: target.path,
        "@path": lambda: path,
        "@query": lambda: "?" + (query or ""),
    }
    return values[name]()


def _component_value(target: Target, component: Item) -> str:
    """The value of one covered component; raise SignatureError for unsupported or absent ones."""
    name = component.value
    if not isinstance(name, str) or isinstance(name, Token) or not name or name != name.lower():
        raise SignatureError("component identifiers must be lowercase strings")
    allowed = ("name",) if name == "@query-param" else ()
    if any(key not in allowed for key, _ in component.params):
        raise SignatureError(f"unsupported parameter on component {name}")
    if name.startswith("@"):
        if name not in _DERIVED:
            raise SignatureError(f"unsupported derived component {name}")
        return _derived_value(target, component)
    value = target.headers.get(name)
    if value is None:
        raise SignatureError(f"covered header {name} is missing")
    return value


def signature_base(target: Target, member: InnerList) -> bytes:
    """Build the RFC 9421 section 2.5 signature base for one Signature-Input member."""
    lines, seen = [], set()
    for component in member.items:
        ident = serialize_item(component)
        if ident in seen:
            raise SignatureError(f"component {ident} is covered twice")
        seen.add(ident)
        value = _component_value(target, component)
        if "\n" in value or "\r" in value:
            raise SignatureError(f"component {ident} contains a newline")
        lines.append(f"{ident}: {value}")
    lines.append(f'"@signature-params": {serialize_inner_list(member)}')
    return to_bytes("\n".join(lines))


def read_signature(headers: Headers, label: str | None = None) -> tuple[str, InnerList, bytes]:
    """Return (label, Signature-Input member, signature bytes); the first label unless one is named."""
    inputs = _parse_field(headers, "Signature-Input")
    signatures = _parse_field(headers, "Signature")
    if not inputs:
        raise SignatureError("Signature-Input header is empty")
    label = label if label is not None else next(iter(inputs))
    member, signature = inputs.get(label), signatures.get(label)
    if not isinstance(member, InnerList) or not all(isinstance(i.value, str) for i in member.items):
        raise SignatureError(f"Signature-Input {label} is not a list of components")
    if not isinstance(signature, Item) or not isinstance(signature.value, bytes):
        raise SignatureError(f"Signature header has no byte sequence for {label}")
    return label, member, signature.value


def _parse_field(headers: Headers, name: str) -> dict:
    """Parse a dictionary-valued header; raise SignatureError when absent or malformed."""
    value = headers.get(name)
    if value is None:
        raise SignatureError(f"{name} header missing")
    try:
        return parse_dictionary(value)
    except StructuredFieldError:
        raise SignatureError(f"malformed {name} header") from None


@dataclass(frozen=True)
class _Params:
    """The signature parameters Mastodon's policy looks at."""

    key_id: str
    created: int
    expires: int | None
    algorithm: str


def _read_params(member: InnerList) -> _Params:
    """keyid and created are required; alg, if given, must be supported."""
    key_id, created = member.param("keyid"), member.param("created")
    expires, algorithm = member.param("expires"), member.param("alg", "")
    if not isinstance(key_id, str) or not key_id:
        raise SignatureError("signature lacks keyid")
    if created is None:
        raise SignatureError("signature lacks created")
    if not _is_int(created) or (expires is not None and not _is_int(expires)):
        raise SignatureError("created and expires must be integers")
    if not isinstance(algorithm, str) or (algorithm and algorithm not in SUPPORTED_ALGORITHMS):
        raise SignatureError(f"unsupported signature algorithm {algorithm}")
    return _Params(key_id, created, expires, algorithm)


def _is_int(value: object) -> bool:
    """An Integer item (Python's bool is an int, but ?1 is not a time)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_coverage(member: InnerList, method: str, body: bytes) -> None:
    """Mastodon: @method and @target-uri covered; with a body, content-digest covered."""
    names = {item.value for item in member.items}
    if not all(name in names for name in REQUIRED_COMPONENTS):
        raise SignatureError("signature must cover @method and @target-uri")
    if (method.upper() == "POST" or body) and "content-digest" not in names:
        raise SignatureError("signature of a request with a body must cover content-digest")


def parse_rfc9421(
    method: str, path: str, headers: Headers, body: bytes, *, scheme: str = "https",
    authority: str | None = None, now: float | None = None,
) -> ParsedSignature:
    """Parse and check the first RFC 9421 signature under Mastodon's policy (no key needed)."""
    label, member, signature = read_signature(headers)
    params = _read_params(member)
    _check_coverage(member, method, body)
    check_time_window(float(params.created), params.expires, now_or(now))
    if "content-digest" in {item.value for item in member.items}:
        check_content_digest(headers.get("content-digest"), body)
    base = signature_base(Target(method, path, headers, scheme, authority), member)
    return ParsedSignature(
        scheme="rfc9421", key_id=params.key_id, algorithm=params.algorithm,
        covered=tuple(serialize_item(item) for item in member.items), signature=signature,
        signing_strings=(base,), created=float(params.created),
        expires=None if params.expires is None else float(params.expires), label=label)


def sign_request_rfc9421(
    method: str,
    path: str,
    headers: HeadersLike,
    body: bytes = b"",
    *,
    key_id: str,
    private_key: str | bytes | PrivateKey,
    scheme: str = "https",
    authority: str | None = None,
    now: float | None = None,
    label: str = "sig1",
    components: Sequence[str | Item] | None = None,
) -> dict[str, str]:
    """Sign with RFC 9421 and return the headers to add (Host, Date, Content-Digest, Signature-Input, Signature)."""
    # Default coverage ("@method" "@target-uri" "@authority" "content-digest" "date"), without
    # content-digest when there is no body; `components` overrides it (e.g. from Accept-Signature).
    view = Headers(headers)
    key = coerce_private_key(private_key)
    has_body = method.upper() == "POST" or bool(body)
    added = _headers_to_add(view, body, has_body, authority, now)
    merged = Headers([*((n, v) for n, v in view.items() if n != "content-digest"), *added.items()])
    member = InnerList(_component_items(components, has_body), _sign_params(key, key_id, now))
    try:
        base = signature_base(Target(method, path, merged, scheme, authority), member)
    except SignatureError as exc:
        raise ValueError(f"cannot sign: {exc}") from None
    signature = _sign(key, base)
    added["Signature-Input"] = f"{label}={serialize_inner_list(member)}"
    added["Signature"] = f"{label}=:{base64.b64encode(signature).decode('ascii')}:"
    return added


def _headers_to_add(
    view: Headers, body: bytes, has_body: bool, authority: str | None, now: float | None,
) -> dict[str, str]:
    """The Host, Date and Content-Digest headers the signature needs."""
    added: dict[str, str] = {}
    if "host" not in view:
        if not authority:
            raise ValueError("a Host header or the authority argument is required to sign")
        added["Host"] = authority
    if "date" not in view:
        added["Date"] = http_date(now)
    if has_body:
        added["Content-Digest"] = content_digest_header(body)
    return added


def _component_items(components: Sequence[str | Item] | None, has_body: bool) -> tuple[Item, ...]:
    """The covered components as items (the default set unless given)."""
    if components is None:
        components = [c for c in SIGN_COMPONENTS if has_body or c != "content-digest"]
    return tuple(c if isinstance(c, Item) else Item(c) for c in components)


def _sign_params(key: PrivateKey, key_id: str, now: float | None) -> Params:
    """created, keyid and alg, in that order."""
    algorithm = "ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else "rsa-v1_5-sha256"
    return (("created", int(now_or(now))), ("keyid", key_id), ("alg", algorithm))


def _sign(key: PrivateKey, base: bytes) -> bytes:
    """Sign a base with rsa-v1_5-sha256 or ed25519."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(base)
    return rsa_sign(key, base, "rsa-v1_5-sha256")


def parse_accept_signature(value: str) -> dict[str, AcceptSignature]:
    """Parse an Accept-Signature header into label -> requested components and parameters; raise ValueError."""
    try:
        members = parse_dictionary(value)
    except StructuredFieldError as exc:
        raise ValueError(f"malformed Accept-Signature header: {exc}") from None
    result = {}
    for label, member in members.items():
        if not isinstance(member, InnerList) or not all(isinstance(i.value, str) for i in member.items):
            raise ValueError(f"Accept-Signature {label} is not a list of components")
        result[label] = AcceptSignature(label, member.items, member.params)
    return result
