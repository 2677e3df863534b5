"""One strict normaliser for the hosts of ActivityPub ids, so origin checks compare like with like.

Mastodon once compared `domain.delete('/')`, which made `mastodon.so/cial` equal
`mastodon.social` (CVE-2023-42451); every host comparison here goes through `id_host`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"https": 443, "http": 80}
# The common shape, decided without urlsplit: scheme, a lower-case ASCII host name and an
# optional port, then the path, query, fragment or the end. Anything else (upper case,
# user information, IPv6, IDNA, odd characters) takes the full path below.
_PLAIN = re.compile(r"(https?)://([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::([0-9]{1,5}))?(?=[/?#]|\Z)")


class BadId(ValueError):
    """A value that cannot be an ActivityPub id."""


def id_host(url: str) -> str:
    """`host[:port]` of an http(s) id: lower-case, IDNA, no trailing dot, default port dropped."""
    if not isinstance(url, str) or len(url) > 2048:
        raise BadId("an id must be a URL of at most 2048 characters")
    plain = _PLAIN.match(url)
    if plain is not None:
        scheme, host, port = plain.groups()
        if port is None or int(port) == _DEFAULT_PORTS[scheme]:
            return host
        if int(port) <= 65535:
            return f"{host}:{int(port)}"
    return _id_host(url)


@lru_cache(maxsize=8192)  # actor and key URLs repeat on every activity of a sender
def _id_host(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadId(f"malformed URL: {exc}") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise BadId(f"not an http(s) URL: {url[:100]}")
    if parts.username is not None or parts.password is not None:
        raise BadId("ids must not carry user information")
    host = parts.hostname.rstrip(".")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise BadId(f"invalid host name in {url[:100]}") from None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        return f"{host}:{port}"
    return host


def same_origin(a: str, b: str) -> bool:
    """True when both ids are on the same host (after normalisation)."""
    try:
        return id_host(a) == id_host(b)
    except BadId:
        return False


def domain_of_input(text: str) -> str:
    """The `host[:port]` a person means by `example.com`, `https://Example.com/` or `example.com:8443`
    (as `id_host` writes hosts, so it compares with actors' domains); BadId when it names none."""
    text = text.strip() if isinstance(text, str) else ""
    if not text or len(text) > 253 + 6 or any(c.isspace() for c in text):
        raise BadId("expected a domain such as example.com")
    if "://" not in text:
        text = f"https://{text}"
    host = id_host(text)
    if not re.fullmatch(r"[a-z0-9.-]+(:[0-9]{1,5})?|\[[0-9a-f:.]+\](:[0-9]{1,5})?", host) or host.startswith("."):
        raise BadId("expected a domain such as example.com")
    return host
