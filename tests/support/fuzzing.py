"""Fuzzing what an inbound request meets before it is stored: strategies, calls and documented refusals.

Each `Target` names one parser, a Hypothesis strategy of inputs (fully random ones and near-valid
ones with mutations: dropped, duplicated, over-long, non-ASCII, wrong-typed or deeply nested
fields, huge numbers, NaN-like strings), the call, and the refusal its callers catch. `outcome`
runs one case and says "accepted" or "refused"; any other exception propagates.
tests/unit/test_fuzz_parsers.py runs every target a few hundred times; bench/fuzz.py runs them
100,000 times in all and counts.

Text reaches the parsers as it does in production: header values and the request path as aiohttp
hands them over (bytes decoded as UTF-8 with surrogateescape, so lone surrogates U+DC80-U+DCFF and
no others); JSON strings with any lone surrogate, since a `\\ud800` escape decodes to one.
"""

from __future__ import annotations

import base64
import copy
import email.utils
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import strategies as st

from activities.parse import ParseError, parse_activity, parse_actor, parse_post
from activities.urls import BadId, id_host
from fedserver.errors import HTTPError
from fedserver.federation import inbox
from fedserver.signatures import (
    SignatureError,
    content_digest_header,
    digest_header,
    generate_rsa_keypair,
    load_public_key,
    parse_accept_signature,
    parse_http_date,
    parse_request_signature,
    public_pem_of,
    sign_request,
    sign_request_rfc9421,
    verify_parsed,
)
from fedserver.signatures.cavage import _signing_string, parse_signature_header
from fedserver.signatures.common import Headers
from fedserver.signatures.digest import check_content_digest, check_digest
from fedserver.signatures.keys import rsa_sign
from fedserver.signatures.structured import StructuredFieldError, parse_dictionary, serialize_dictionary

NOW = 1_750_000_000.0
LOCAL_DOMAIN = "shop.test"
SENDER = "https://a.example/users/ann"
KEY_ID = SENDER + "#main-key"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
CONTEXT = ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1", {"toot": "http://joinmastodon.org/ns#"}]

# --- text and byte pieces -----------------------------------------------------------------------

# Characters that break naive parsers: delimiters, escapes, controls, non-ASCII look-alikes (Arabic-Indic
# and superscript digits pass str.isdigit), and the lone surrogates aiohttp's surrogateescape produces.
_PIECES = ('"', "'", ",", ";", "=", "(", ")", "\\", ":", "?", "#", "@", "/", "%", "&", "+", " ", "\t", "\r\n ",
           "\n", "\x00", "\x7f", "é", "한", "\u200b", "\ufeff", "\udc80", "\udcff", "٣", "²", "ﬀ", "*", "-", ".",
           "0", "9", "==", "NaN", "9" * 400)
_JSON_PIECES = (*_PIECES, "\ud800", "\udfff", "\ud83d", "\u2028")
_BYTE_PIECES = (b"\x00", b"\\u0000", b"\\ud800", b"\xff", b"\xc3", b"\xed\xa0\x80", b"NaN", b"Infinity", b"-Infinity",
                b"1" * 5000, b"1e999", b"-0", b"[" * 40, b"{" * 40, b'"', b"\\", b",", b":", b"}", b"]",
                b"\xef\xbb\xbf", b"null", b" ", b'"type"', b'"id"', b'"actor"')


def aiohttp_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Header or path text as aiohttp decodes it (UTF-8 with surrogateescape), or plain text."""
    return st.one_of(
        st.binary(max_size=max_size).map(lambda raw: raw.decode("utf-8", "surrogateescape")),
        st.text(max_size=max_size),
        st.lists(st.sampled_from(_PIECES), max_size=6).map("".join),
    )


json_text = st.one_of(st.text(max_size=20), st.lists(st.sampled_from(_JSON_PIECES) | st.characters(), max_size=8).map("".join))


@st.composite
def edited_text(draw, text: str, pieces: tuple[str, ...] = _PIECES) -> str:
    """`text` after one to four character-level edits (insert, delete, replace, cut, repeat, case)."""
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(("insert", "delete", "replace", "cut", "repeat", "case")))
        piece = draw(st.sampled_from(pieces) | st.text(min_size=1, max_size=3))
        if op == "insert":
            text = text[:pos] + piece + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 8)):]
        elif op == "replace":
            text = text[:pos] + piece + text[pos + 1:]
        elif op == "cut":
            text = text[:pos]
        elif op == "repeat":
            text = text[:pos] + text[pos:pos + draw(st.integers(1, 12))] * draw(st.integers(2, 60)) + text[pos:]
        else:
            text = text.upper() if draw(st.booleans()) else text.lower()
    return text


@st.composite
def edited_bytes(draw, raw: bytes) -> bytes:
    """`raw` after one to four byte-level edits, or wrapped in deep brackets."""
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(raw)))
        op = draw(st.sampled_from(("insert", "delete", "replace", "cut", "nest")))
        piece = draw(st.sampled_from(_BYTE_PIECES) | st.binary(min_size=1, max_size=3))
        if op == "insert":
            raw = raw[:pos] + piece + raw[pos:]
        elif op == "delete":
            raw = raw[:pos] + raw[pos + draw(st.integers(1, 8)):]
        elif op == "replace":
            raw = raw[:pos] + piece + raw[pos + 1:]
        elif op == "cut":
            raw = raw[:pos]
        else:
            depth = draw(st.sampled_from((31, 33, 200, 5_000, 100_000)))
            raw = b"[" * depth + raw + b"]" * depth
    return raw


# --- JSON values and URLs -----------------------------------------------------------------------

_KEYS = ("@context", "id", "type", "actor", "object", "target", "to", "cc", "bto", "bcc", "audience", "attributedTo",
         "content", "name", "summary", "url", "href", "inReplyTo", "tag", "published", "updated", "preferredUsername",
         "inbox", "outbox", "endpoints", "sharedInbox", "publicKey", "publicKeyPem", "owner", "icon", "image",
         "followers", "following", "featured", "manuallyApprovesFollowers", "discoverable", "indexable")
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10**400), 10**400),
    st.floats(allow_nan=True, allow_infinity=True), json_text,
)
json_values = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_KEYS) | json_text, inner, max_size=5),
    max_leaves=12,
)

_HOSTS = ("a.example", "A.Example", "a.example.", "bücher.example", "xn--bcher-kva.example", "xn--", "xn--zz", "[::1]",
          "[::1", "::1]", "127.0.0.1", "a..b", ".", "", "-a-", "é" * 70, "a" * 64 + ".example", "a" * 300,
          "ß.example", "\u200b.example", "a_b.example", "a%2eexample", LOCAL_DOMAIN, "한국.example", "\udc80.example",
          "\ud800.example", "[v1.x]", "[::ffff:1.2.3.4]", "a.example\\@b.example", "a.example\x00", "a.example:")
_PORTS = ("", "", "", ":443", ":80", ":0", ":8080", ":65535", ":65536", ":99999", ":", ":abc", ":-1", ":٣", ":²",
          ":" + "9" * 30)
_PATHS = ("", "/", "/users/a", "/users/a#main-key", "/?q=1", "#frag", "/é", "/\ud800", "/a b", "/%zz", "/" + "a" * 3000)


@st.composite
def urls(draw) -> str:
    """URL-shaped strings: odd schemes, user information, hosts, ports and paths."""
    scheme = draw(st.sampled_from(("https", "https", "http", "HTTPS", "Https", "ftp", "javascript", "")))
    separator = draw(st.sampled_from(("://", "://", "://", ":", ":///", "//", "")))
    userinfo = draw(st.sampled_from(("", "", "", "user@", "user:pw@", "@", ":@")))
    host = draw(st.sampled_from(_HOSTS) | json_text)
    port = draw(st.sampled_from(_PORTS))
    path = draw(st.sampled_from(_PATHS) | json_text.map(lambda text: "/" + text))
    return f"{scheme}{separator}{userinfo}{host}{port}{path}"


_WEIRD = (None, True, False, 0, -1, 1.5, 2**63, -(2**63) - 1, 10**400, float("nan"), float("inf"), -0.0, 1e308,
          "", " ", "NaN", "Infinity", "-Infinity", "null", "undefined", "0x10", "1e999", "\x00", "\ud800", "\udc80",
          "é", "https://", "https://a.example", "https://user@a.example/x", "HTTPS://A.EXAMPLE./X",
          "https://a.example:99999/", "https://[::1]/", "https://[::1/", "//a.example/x", "javascript:alert(1)",
          "https://shop.test/users/alice", PUBLIC, "as:Public", [], {}, [[]], [None], {"id": None},
          {"id": ["https://a.example/"]}, {"id": {"id": "https://a.example/"}}, {"type": "Mention"}, "x" * 70,
          "x" * 3000)


def _nested(depth: int) -> object:
    """A value nested `depth` levels deep, built without recursion."""
    value: object = "https://a.example/x"
    for level in range(depth):
        value = {"id": value} if level % 2 else [value]
    return value


weird_values = st.one_of(
    st.sampled_from(_WEIRD).map(lambda value: json.loads(json.dumps(value)) if isinstance(value, (list, dict)) else value),
    json_values,
    urls(),
    st.integers(0, 3).map(lambda i: (30, 33, 200, 2_000)[i]).map(_nested),
    st.integers(4_990, 5_010).map(lambda n: [PUBLIC] * n),
    st.integers(99, 102).map(lambda n: [{"type": "Mention", "href": SENDER}] * n),
)


def _slots(doc: object) -> list[tuple[object, object]]:
    """Every (container, key or index) in a document, down to four levels."""
    slots, stack = [], [(doc, 0)]
    while stack:
        item, depth = stack.pop()
        keys = list(item) if isinstance(item, dict) else range(min(len(item), 8)) if isinstance(item, list) else []
        for key in keys:
            slots.append((item, key))
            if depth < 4 and isinstance(item[key], (dict, list)):
                stack.append((item[key], depth + 1))
    return slots


@st.composite
def mutated_document(draw, documents: st.SearchStrategy[dict], max_mutations: int = 4) -> dict:
    """A valid document after zero to `max_mutations` mutations anywhere in it (edited in place)."""
    doc = copy.deepcopy(draw(documents))  # mutations must never reach a shared constant such as CONTEXT
    for _ in range(draw(st.integers(0, max_mutations))):
        slots = _slots(doc)
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        op = draw(st.sampled_from(("drop", "weird", "weird", "list", "wrap", "edit", "add", "swap")))
        value = container[key]
        if op == "drop":
            del container[key]
        elif op == "weird":
            container[key] = draw(weird_values)
        elif op == "list":
            container[key] = [value, value] if draw(st.booleans()) else [value]
        elif op == "wrap":
            container[key] = {draw(st.sampled_from(("id", "type", "href", "url"))): value}
        elif op == "edit" and isinstance(value, str):
            container[key] = draw(edited_text(value, _JSON_PIECES))
        elif op == "add" and isinstance(container, dict):
            container[draw(st.sampled_from(_KEYS))] = draw(weird_values)
        elif op == "swap":
            other_container, other_key = draw(st.sampled_from(slots))
            container[key] = other_container[other_key] if other_container is not container else value
    return doc


# --- near-valid ActivityPub documents -----------------------------------------------------------

_SENDER_HOSTS = ("a.example", "a.example", "b.example:8443", "bücher.example", "A.EXAMPLE", LOCAL_DOMAIN)
_ACTIVITY_TYPES = ("Create", "Update", "Delete", "Follow", "Accept", "Reject", "Undo", "Like", "Announce", "Block",
                   "Move", "Flag", "EmojiReact", "Add", "Remove", "Offer", "Question", "")
_HTML = ("<p>hello</p>", "<script>alert(1)</script>x", '<a href="javascript:x">x</a>', "<<<>>>",
         '<p><span class="h-card"><a href="https://a.example/@b" class="u-url mention">@b</a></span></p>',
         "&amp;&#0;&#xD800;&#x110000;&nosuch;", "<p>" * 500, "<p>\ud800</p>", "<p>\udc80 é 한</p>",
         "<svg><math><style><img src=x onerror=alert(1)>", "x" * 100_001)
_DATES = ("2025-06-15T15:06:40Z", "2025-06-15T15:06:40.123+09:00", "2025-06-15", "2025-13-45T99:99:99Z", "Z", "",
          "9999-12-31T23:59:59Z", "0001-01-01T00:00:00-23:59", "2025-06-15T15:06:40+24:00", "x" * 65, "٢٠٢٥-٠٦-١٥")
_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)


@st.composite
def post_documents(draw, host: str | None = None, author: str | None = None) -> dict:
    """A Note-like object, valid but for what the drawn fields say."""
    host = host or draw(st.sampled_from(_SENDER_HOSTS))
    author = author or f"https://{host}/users/{draw(_names)}"
    doc = {
        "id": f"https://{host}/notes/{draw(st.integers(0, 10**6))}",
        "type": draw(st.sampled_from(("Note", "Note", "Article", "Question", "Page", "Image", "Agreement"))),
        "attributedTo": author,
        "content": draw(st.sampled_from(_HTML) | json_text),
        "published": draw(st.sampled_from(_DATES) | json_text),
        "to": [PUBLIC], "cc": [author + "/followers"],
    }
    optional = {
        "summary": st.sampled_from(_HTML) | json_text, "name": json_text, "updated": st.sampled_from(_DATES),
        "inReplyTo": urls(), "url": urls() | st.just({"type": "Link", "href": author}),
        "tag": st.lists(st.fixed_dictionaries({"type": st.sampled_from(("Mention", "Hashtag", "Emoji")),
                                               "href": urls(), "name": json_text}), max_size=4),
    }
    for key in draw(st.lists(st.sampled_from(sorted(optional)), unique=True, max_size=len(optional))):
        doc[key] = draw(optional[key])
    return doc


@st.composite
def activity_documents(draw) -> dict:
    """An activity with a referenced or embedded object, valid but for the sender's host or type."""
    host = draw(st.sampled_from(_SENDER_HOSTS))
    actor = f"https://{host}/users/{draw(_names)}"
    kind = draw(st.sampled_from(_ACTIVITY_TYPES))
    obj = draw(st.one_of(
        st.sampled_from((f"https://{host}/notes/1", "https://other.example/notes/2", actor, "https://shop.test/users/alice")),
        post_documents(host, actor),
        st.just({"id": f"https://{host}/follows/1", "type": "Follow", "actor": actor, "object": "https://shop.test/users/alice"}),
        st.just({"id": f"https://{host}/agreements/1", "type": "Agreement", "attributedTo": "https://shop.test/users/alice"}),
    ))
    return {"@context": CONTEXT, "id": f"{actor}/activities/{draw(st.integers(0, 10**6))}", "type": kind, "actor": actor,
            "object": obj, "to": [PUBLIC], "cc": [actor + "/followers"]}


@st.composite
def actor_documents(draw) -> dict:
    """An actor with its key (RSA, PKCS#1, Ed25519 or an edited PEM), valid but for the drawn fields."""
    host = draw(st.sampled_from(_SENDER_HOSTS))
    actor = f"https://{host}/users/{draw(_names)}"
    pem = key_material().pems[draw(st.integers(0, len(key_material().pems) - 1))]
    if draw(st.integers(0, 3)) == 0:
        pem = draw(edited_text(pem))
    return {
        "@context": CONTEXT, "id": actor,
        "type": draw(st.sampled_from(("Person", "Person", "Service", "Group", "Organization", "Application", "Tombstone"))),
        "preferredUsername": draw(_names | json_text), "name": draw(json_text), "summary": draw(st.sampled_from(_HTML)),
        "inbox": actor + "/inbox", "outbox": actor + "/outbox", "followers": actor + "/followers",
        "endpoints": {"sharedInbox": f"https://{host}/inbox"},
        "publicKey": {"id": actor + "#main-key", "owner": actor, "publicKeyPem": pem},
        "icon": {"type": "Image", "url": draw(urls())}, "image": [{"type": "Image", "url": f"https://{host}/h.png"}],
        "url": draw(urls()), "manuallyApprovesFollowers": draw(st.booleans()), "discoverable": True,
    }


@st.composite
def inbox_bodies(draw) -> bytes:
    """Request bodies: random bytes, random JSON, near-valid activities; some edited byte by byte."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.binary(max_size=200))
    value = draw(json_values) if kind == 1 else draw(mutated_document(activity_documents()))
    ensure_ascii = draw(st.booleans())
    try:
        text = json.dumps(value, ensure_ascii=ensure_ascii)
    except (ValueError, RecursionError):  # past Python's 4,300-digit integers or json's nesting (see edited_bytes)
        text = "{}"
    raw = text.encode("utf-8", "surrogatepass")  # lone surrogates become invalid UTF-8, as a careless peer sends
    return draw(edited_bytes(raw)) if draw(st.integers(0, 3)) == 0 else raw


# --- keys and signed requests -------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    """The keys that sign the near-valid requests, and PEMs for the actor documents."""

    rsa_private: rsa.RSAPrivateKey
    ed_private: ed25519.Ed25519PrivateKey
    pems: tuple[str, ...]

    def public(self, kind: str) -> object:
        return (self.rsa_private if kind == "rsa" else self.ed_private).public_key()


@cache
def key_material() -> Keys:
    """Made once per process (an RSA key takes a while)."""
    private_pem, public_pem = generate_rsa_keypair(2048)
    rsa_private = serialization.load_pem_private_key(private_pem.encode(), password=None)
    ed_private = ed25519.Ed25519PrivateKey.generate()
    pkcs1 = rsa_private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode()
    return Keys(rsa_private, ed_private, (public_pem, pkcs1, public_pem_of(ed_private), "", "-----BEGIN PUBLIC KEY-----"))


@dataclass(frozen=True)
class Request:
    """What `parse_request_signature` sees of an inbox request, and which key should verify it."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    authority: str | None
    key: str  # "rsa" or "ed25519"


ACTIVITY_BODY = json.dumps({"@context": "https://www.w3.org/ns/activitystreams", "id": SENDER + "/likes/1",
                            "type": "Like", "actor": SENDER, "object": "https://shop.test/notes/1"}).encode()
INBOX_PATH = "/users/alice/inbox"
OUTBOX_PATH = "/users/alice/outbox?page=true&min_id=%E2%9C%93"


def _request(method: str, path: str, headers: dict[str, str], body: bytes, key: str) -> Request:
    return Request(method, path, tuple(headers.items()), body, LOCAL_DOMAIN, key)


def _cavage_hs2019() -> Request:
    """hs2019 with (created) and (expires), as Fedify may sign; not what `sign_request` makes."""
    names = ("(request-target)", "host", "(created)", "(expires)", "digest")
    params = {"created": str(int(NOW) - 5), "expires": str(int(NOW) + 300)}
    headers = {"Host": LOCAL_DOMAIN, "Digest": digest_header(ACTIVITY_BODY), "Content-Type": "application/activity+json"}
    text = _signing_string(names, "POST", INBOX_PATH, Headers(headers), with_query=True, params=params)
    signature = base64.b64encode(rsa_sign(key_material().rsa_private, text)).decode()
    headers["Signature"] = (f'keyId="{KEY_ID}", algorithm="hs2019", created={params["created"]}, '
                            f'expires={params["expires"]}, headers="{" ".join(names)}", signature="{signature}"')
    return _request("POST", INBOX_PATH, headers, ACTIVITY_BODY, "rsa")


@cache
def cavage_requests() -> tuple[Request, ...]:
    """Valid draft-cavage requests: a POST and a GET as Mastodon signs them, and an hs2019 POST."""
    keys = key_material()
    post = {"Content-Type": "application/activity+json"}
    post |= sign_request("POST", INBOX_PATH, post, ACTIVITY_BODY, key_id=KEY_ID, private_key=keys.rsa_private,
                         host=LOCAL_DOMAIN, now=NOW)
    get = {"Accept": "application/activity+json"}
    get |= sign_request("GET", OUTBOX_PATH, get, key_id=KEY_ID, private_key=keys.rsa_private, host=LOCAL_DOMAIN, now=NOW)
    return (_request("POST", INBOX_PATH, post, ACTIVITY_BODY, "rsa"), _request("GET", OUTBOX_PATH, get, b"", "rsa"),
            _cavage_hs2019())


@cache
def rfc9421_requests() -> tuple[Request, ...]:
    """Valid RFC 9421 requests: RSA and Ed25519 POSTs, and a GET covering every derived component."""
    keys = key_material()
    out = []
    for kind, private in (("rsa", keys.rsa_private), ("ed25519", keys.ed_private)):
        headers = {"Host": LOCAL_DOMAIN, "Content-Type": "application/activity+json"}
        headers |= sign_request_rfc9421("POST", INBOX_PATH, headers, ACTIVITY_BODY, key_id=KEY_ID,
                                        private_key=private, now=NOW)
        out.append(_request("POST", INBOX_PATH, headers, ACTIVITY_BODY, kind))
    components = ["@method", "@target-uri", "@authority", "@scheme", "@request-target", "@path", "@query", "accept"]
    headers = {"Host": LOCAL_DOMAIN, "Accept": "application/activity+json"}
    headers |= sign_request_rfc9421("GET", OUTBOX_PATH, headers, key_id=KEY_ID, private_key=keys.rsa_private, now=NOW,
                                    components=components)
    out.append(_request("GET", OUTBOX_PATH, headers, b"", "rsa"))
    return tuple(out)


_PARAM_IN_HEADER = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)=("(?:[^"\\]|\\.)*"|[^,;\s)]*)')
_WEIRD_PARAMS = ("", '""', "-1", "0", "1.5", "9" * 15, "9" * 16, "9" * 20, "9" * 400, "9" * 5000, '"' + "9" * 5000 + '"',
                 "١٢٣", '"²"', '"NaN"', "NaN", "1e9", '" 1"', "0x10", "?1", ":AAAA:", ":", "tok", '"tok"', '"é"',
                 '"\udc80"', '"a\\"b"', '"\\', '"(created)"', '"(request-target) host date digest"', '"hs2019"',
                 '"RSA-SHA256"', '"ed25519"', '"rsa-pss-sha512"', '"' + "A" * 3000 + '"', "(\"@method\")")
_OTHER_NAMES = ("Host", "Date", "Digest", "Content-Digest", "Content-Type", "Accept", "Signature", "Signature-Input",
                "X-Other", "SIGNATURE", "signature-input")


@st.composite
def mutated_request(draw, bases: st.SearchStrategy[Request]) -> Request:
    """A valid signed request after zero to three mutations of its headers, method, path, body or key."""
    request = draw(bases)
    for _ in range(draw(st.integers(0, 3))):
        fields = list(request.headers)
        op = draw(st.sampled_from(("drop", "duplicate", "replace", "edit", "param", "param", "rename", "method",
                                   "path", "body", "authority", "key")))
        index = draw(st.integers(0, len(fields) - 1)) if fields else None
        if op in ("drop", "duplicate", "replace", "edit", "param", "rename") and index is None:
            continue
        if op == "drop":
            del fields[index]
        elif op == "duplicate":
            name, value = fields[index]
            fields.append((name, draw(edited_text(value)) if draw(st.booleans()) else value))
        elif op == "replace":
            fields[index] = (fields[index][0], draw(aiohttp_text()))
        elif op == "edit":
            fields[index] = (fields[index][0], draw(edited_text(fields[index][1])))
        elif op == "param":
            fields[index] = (fields[index][0], draw(_mutated_param(fields[index][1])))
        elif op == "rename":
            fields[index] = (draw(st.sampled_from(_OTHER_NAMES)), fields[index][1])
        elif op == "method":
            request = replace(request, method=draw(st.sampled_from(("GET", "POST", "post", "PUT", "", "G\udc80T"))))
        elif op == "path":
            request = replace(request, path=draw(edited_text(request.path) | aiohttp_text()))
        elif op == "body":
            request = replace(request, body=draw(edited_bytes(request.body) | st.just(b"")))
        elif op == "authority":
            request = replace(request, authority=draw(st.sampled_from(
                (None, "SHOP.TEST", "shop.test:443", "shop.test:8443", "other.example", "", " ", "\udc80"))))
        else:
            request = replace(request, key="ed25519" if request.key == "rsa" else "rsa")
        request = replace(request, headers=tuple(fields))
    return request


@st.composite
def _mutated_param(draw, value: str) -> str:
    """`value` with one `name=value` parameter given a weird value (or unchanged if it has none)."""
    matches = list(_PARAM_IN_HEADER.finditer(value))
    if not matches:
        return value
    match = draw(st.sampled_from(matches))
    weird = draw(st.sampled_from(_WEIRD_PARAMS) | aiohttp_text(12))
    return value[:match.start(2)] + weird + value[match.end(2):]


_CAVAGE_NAMES = ("keyId", "algorithm", "headers", "signature", "created", "expires", "KEYID", "keyid", "x")
_SIGNED_NAMES = ("(request-target)", "host", "date", "digest", "content-type", "(created)", "(expires)", "accept",
                 "x-missing", "(REQUEST-TARGET)", "Date")


@st.composite
def cavage_signature_values(draw) -> str:
    """Signature header values: random text, or parameters with valid-looking or weird values."""
    if draw(st.integers(0, 4)) == 0:
        return draw(aiohttp_text(80))
    normal = {
        "keyid": st.sampled_from((KEY_ID, "https://b.example/actor#main-key", "", "é")),
        "algorithm": st.sampled_from(("rsa-sha256", "hs2019", "RSA-SHA256", "ed25519", "rsa-sha512", "")),
        "headers": st.lists(st.sampled_from(_SIGNED_NAMES), max_size=7).map(" ".join),
        "signature": st.binary(max_size=300).map(lambda raw: base64.b64encode(raw).decode()),
        "created": st.integers(-4000, 4000).map(lambda delta: str(int(NOW) + delta)),
        "expires": st.integers(-4000, 50_000).map(lambda delta: str(int(NOW) + delta)),
    }
    parts = []
    for name in draw(st.lists(st.sampled_from(_CAVAGE_NAMES), max_size=7)):
        strategy = normal.get(name.lower(), aiohttp_text(10))
        value = draw(strategy | st.sampled_from(_WEIRD_PARAMS))
        quoted = value if value.startswith('"') or draw(st.integers(0, 3)) == 0 else f'"{value}"'
        parts.append(f"{name}={quoted}")
    text = draw(st.sampled_from((",", ", ", " ,", ",\t", ";", ""))).join(parts)
    return draw(edited_text(text)) if draw(st.integers(0, 3)) == 0 else text


_COMPONENTS = ('"@method"', '"@target-uri"', '"@authority"', '"@scheme"', '"@request-target"', '"@path"', '"@query"',
               '"@query-param";name="page"', '"@query-param";name="min_id"', '"@query-param";name=page',
               '"@query-param"', '"@status"', '"@METHOD"', '"content-digest"', '"date"', '"host"', '"x-missing"',
               '"content-digest";sf', '"date";req', "token", "1", ":AAAA:", '"Date"', '""', '"@query-param";name="é"')
_SF_PARAMS = {
    "created": (str(int(NOW)), str(int(NOW) - 10), str(int(NOW) + 7200), "-1", "1.5", "9" * 15, "9" * 16, "?1",
                f'"{int(NOW)}"', ":AAAA:", "tok"),
    "expires": (str(int(NOW) + 300), str(int(NOW) - 1), "0", "1.5", "?0", "9" * 15),
    "keyid": (f'"{KEY_ID}"', "tok", '""', '"a\\"b"', "1", ":AAAA:"),
    "alg": ('"rsa-v1_5-sha256"', '"rsa-pss-sha512"', '"ed25519"', '"hmac-sha256"', "ed25519", '""', "?1"),
    "nonce": ('"abc"', "1"), "tag": ('"fedify"', "x"), "Created": ("1",),
}


@st.composite
def signature_input_values(draw) -> tuple[str, str]:
    """(Signature-Input, Signature) pairs: generated members with valid-looking or weird parts."""
    label = draw(st.sampled_from(("sig1", "sig", "a", "*x", "Sig1", "1", "sig-1.2*", "")))
    components = draw(st.lists(st.sampled_from(_COMPONENTS), max_size=8))
    params = "".join(
        f";{name}={draw(st.sampled_from(_SF_PARAMS[name]))}"
        for name in draw(st.lists(st.sampled_from(sorted(_SF_PARAMS)), max_size=6)))
    signature_input = f"{label}=({' '.join(components)}){params}"
    if draw(st.booleans()):
        signature_input += draw(st.sampled_from((", sig2=()", f", {label}=()", ", sig2", ",", " ;x", ", sig2=?1")))
    raw = base64.b64encode(draw(st.binary(max_size=300))).decode()
    signature_label = draw(st.sampled_from((label, label, "sig2", "")))
    signature = f"{signature_label}=" + draw(st.sampled_from((f":{raw}:", f":{raw}:", f'"{raw}"', raw, "?1", "(:AA==:)")))
    if draw(st.integers(0, 3)) == 0:
        signature_input = draw(edited_text(signature_input))
    if draw(st.integers(0, 5)) == 0:
        signature = draw(edited_text(signature))
    return signature_input, signature


@st.composite
def generated_cavage_requests(draw) -> Request:
    """A request with a generated Signature header and some of the headers it may name."""
    method = draw(st.sampled_from(("POST", "GET")))
    body = ACTIVITY_BODY if method == "POST" else b""
    optional = {
        "Host": st.sampled_from((LOCAL_DOMAIN, "other.example", "")),
        "Date": http_dates(),
        "Digest": digest_values(body),
        "Content-Type": st.just("application/activity+json"),
        "Accept": st.just("application/activity+json"),
    }
    headers = {name: draw(optional[name]) for name in draw(st.lists(st.sampled_from(sorted(optional)), unique=True))}
    headers = {name: value for name, value in headers.items() if value is not None}
    headers["Signature"] = draw(cavage_signature_values())
    return _request(method, draw(st.sampled_from((INBOX_PATH, OUTBOX_PATH))), headers, body, draw(
        st.sampled_from(("rsa", "ed25519"))))


@st.composite
def generated_rfc9421_requests(draw) -> Request:
    """A request with generated Signature-Input and Signature headers, and some covered headers."""
    method = draw(st.sampled_from(("POST", "GET")))
    body = ACTIVITY_BODY if method == "POST" else b""
    optional = {
        "Host": st.sampled_from((LOCAL_DOMAIN, "SHOP.TEST:443", "")),
        "Date": http_dates(),
        "Content-Digest": content_digest_values(body),
        "Accept": st.just("application/activity+json"),
    }
    headers = {name: draw(optional[name]) for name in draw(st.lists(st.sampled_from(sorted(optional)), unique=True))}
    headers = {name: value for name, value in headers.items() if value is not None}
    headers["Signature-Input"], headers["Signature"] = draw(signature_input_values())
    path = draw(st.sampled_from((INBOX_PATH, OUTBOX_PATH, "/x?page=1&page=2", "/x?%zz=%80&page", "/x?page=\udc80"))
                | aiohttp_text())
    return Request(method, path, tuple(headers.items()), body, draw(st.sampled_from((LOCAL_DOMAIN, None))),
                   draw(st.sampled_from(("rsa", "ed25519"))))


# --- digests, dates and structured fields -------------------------------------------------------


def digest_values(body: bytes) -> st.SearchStrategy[str | None]:
    """Digest header values for `body`: the right one, edited, generated lists, random text, none."""
    entry = st.tuples(st.sampled_from(("SHA-256", "sha-256", "SHA-512", "MD5", "", "é")),
                      st.sampled_from(("=", "=", "", "==")),
                      st.binary(max_size=64).map(lambda raw: base64.b64encode(raw).decode()) | aiohttp_text(12))
    return st.one_of(
        st.just(digest_header(body)),
        edited_text(digest_header(body)),
        st.lists(entry.map("".join), max_size=4).map(", ".join),
        aiohttp_text(),
        st.none(),
    )


def content_digest_values(body: bytes) -> st.SearchStrategy[str | None]:
    """Content-Digest header values for `body`: right ones, edited, generated dictionaries, random text, none."""
    right = st.sampled_from(("sha-256", "sha-512")).map(lambda alg: content_digest_header(body, alg))
    member = st.tuples(st.sampled_from(("sha-256", "sha-512", "md5", "SHA-256", "unixsum")),
                       st.sampled_from((":AAAA:", ":" + "A" * 43 + "=:", ":?:", "?1", "1", '"x"', "(:AA==:)", "")))
    return st.one_of(
        right, right.flatmap(edited_text), st.lists(member.map("=".join), max_size=3).map(", ".join),
        aiohttp_text(), st.none())


@st.composite
def http_dates(draw) -> str:
    """HTTP dates in the three grammars, valid, edited, or random text."""
    seconds = draw(st.integers(0, 253_402_300_799) | st.integers(int(NOW) - 7200, int(NOW) + 7200))
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(aiohttp_text())
    stamp = time.gmtime(seconds)
    text = (email.utils.formatdate(seconds, usegmt=True), time.strftime("%A, %d-%b-%y %H:%M:%S GMT", stamp),
            time.strftime("%a %b %e %H:%M:%S %Y", stamp), email.utils.formatdate(seconds, usegmt=True))[kind - 1]
    return draw(edited_text(text, (*_PIECES, "٣", "00", "99", "Feb", "31"))) if draw(st.booleans()) else text


_SF_ALPHABET = 'abcz*-_.:;=,()"? \t0123456789+/\\@ABZ!#%é\udc80'
structured_texts = st.one_of(
    st.text(alphabet=_SF_ALPHABET, max_size=60),
    signature_input_values().map(lambda pair: pair[0]),
    signature_input_values().map(lambda pair: pair[1]),
    st.just(b"").flatmap(lambda _: content_digest_values(b"body")).filter(lambda value: value is not None),
    aiohttp_text(),
)


# --- targets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One parser under fuzzing: its inputs, the call, and its documented refusal."""

    name: str
    strategy: st.SearchStrategy
    call: Callable[[object], object]
    refusals: tuple[type[BaseException], ...]
    refused: Callable[[BaseException], bool] = lambda exc: True  # narrows the refusal (the inbox: a 4xx)


def outcome(target: Target, case: object) -> str:
    """"accepted" or "refused" (with the documented exception); any other exception propagates."""
    try:
        target.call(case)
    except target.refusals as exc:
        if not target.refused(exc):
            raise
        return "refused"
    return "accepted"


def _inbox_body(body: bytes) -> None:
    """What the inbox does with a body before any signature: JSON, envelope and origin checks."""
    activity, _ = inbox._parse(body)
    inbox._check_origin(activity, LOCAL_DOMAIN)


def _actor_and_key(doc: object) -> None:
    """What a key fetch does with the signer's document: parse the actor, load its key."""
    load_public_key(parse_actor(doc).public_key_pem)


def _signed_request(request: Request) -> None:
    """Parse the signature (no key needed), then verify it with the signer's key."""
    parsed = parse_request_signature(request.method, request.path, list(request.headers), request.body,
                                     scheme="https", authority=request.authority, now=NOW)
    verify_parsed(parsed, key_material().public(request.key))


def _structured_field(text: str) -> None:
    """Parse a Dictionary; what parses must serialise again (signature bases are built from it)."""
    serialize_dictionary(parse_dictionary(text))


def _digest(case: tuple[str | None, bytes]) -> None:
    check_digest(*case)


def _content_digest(case: tuple[str | None, bytes]) -> None:
    check_content_digest(*case)


_bodies = st.sampled_from((ACTIVITY_BODY, b"", b"body"))

ID_HOST = Target("id_host", st.one_of(urls(), json_text, st.sampled_from(_WEIRD)), id_host, (BadId,))
ACTIVITY = Target("parse_activity", st.one_of(json_values, mutated_document(activity_documents())), parse_activity,
                  (ParseError,))
INBOX_BODY = Target("inbox body (JSON, envelope, origin)", inbox_bodies(), _inbox_body, (HTTPError,),
                    lambda exc: 400 <= exc.status < 500)
ACTOR = Target("parse_actor + load_public_key", st.one_of(json_values, mutated_document(actor_documents())),
               _actor_and_key, (ParseError, SignatureError))
POST = Target("parse_post", st.one_of(json_values, mutated_document(post_documents())), parse_post, (ParseError,))
CAVAGE_PARAMS = Target("Signature header (draft-cavage)", cavage_signature_values(), parse_signature_header,
                       (SignatureError,))
CAVAGE_REQUEST = Target(
    "draft-cavage request",
    st.one_of(st.integers(0, 2).flatmap(lambda i: mutated_request(st.just(cavage_requests()[i]))),
              generated_cavage_requests()),
    _signed_request, (SignatureError,))
RFC9421_REQUEST = Target(
    "RFC 9421 request",
    st.one_of(st.integers(0, 2).flatmap(lambda i: mutated_request(st.just(rfc9421_requests()[i]))),
              generated_rfc9421_requests()),
    _signed_request, (SignatureError,))
STRUCTURED = Target("structured fields (RFC 8941)", structured_texts, _structured_field, (StructuredFieldError,))
ACCEPT_SIGNATURE = Target("Accept-Signature", structured_texts, parse_accept_signature, (ValueError,))
DIGEST = Target("Digest", _bodies.flatmap(lambda body: st.tuples(digest_values(body), st.just(body))), _digest,
                (SignatureError,))
CONTENT_DIGEST = Target("Content-Digest", _bodies.flatmap(lambda body: st.tuples(content_digest_values(body), st.just(body))),
                        _content_digest, (SignatureError,))
HTTP_DATE = Target("HTTP date", http_dates(), parse_http_date, (ValueError,))

TARGETS = (ID_HOST, ACTIVITY, INBOX_BODY, ACTOR, POST, CAVAGE_PARAMS, CAVAGE_REQUEST, RFC9421_REQUEST, STRUCTURED,
           ACCEPT_SIGNATURE, DIGEST, CONTENT_DIGEST, HTTP_DATE)
