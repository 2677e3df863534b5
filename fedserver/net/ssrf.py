"""Address rules for outbound HTTP: which URLs and which resolved IP addresses we may contact.

Two guards, both needed (security checklist row F):

- `check_url` vets a URL before a request is sent: on the first URL *and on every redirect
  hop*. It is the only guard for IP-literal hosts, which aiohttp never hands to a resolver.
- `GuardedResolver` sits in the connector, so every host name is checked at connect time,
  on every hop and every new connection: a name that resolves to a private address (DNS
  rebinding, Fedify CVE-2024-39687) is refused before a single byte is sent.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The IANA special-purpose registries (iana-ipv4-special-registry, iana-ipv6-special-registry)
# plus multicast and reserved space. Listed explicitly because `ipaddress` calls several of
# them global (NAT64, 6to4, 192.88.99/24) and Fedify CVE-2026-50131 was exactly that gap.
FORBIDDEN_NETWORKS = tuple(ipaddress.ip_network(net) for net in (
    "0.0.0.0/8",           # "this network"; 0.0.0.0 reaches localhost on Linux (Lemmy CVE-2026-33693)
    "10.0.0.0/8",
    "100.64.0.0/10",       # carrier-grade NAT
    "127.0.0.0/8",
    "169.254.0.0/16",      # link-local, incl. cloud metadata 169.254.169.254
    "172.16.0.0/12",
    "192.0.0.0/24",        # IETF protocol assignments
    "192.0.2.0/24",        # TEST-NET-1
    "192.88.99.0/24",      # 6to4 relay anycast
    "192.168.0.0/16",
    "198.18.0.0/15",       # benchmarking
    "198.51.100.0/24",     # TEST-NET-2
    "203.0.113.0/24",      # TEST-NET-3
    "224.0.0.0/4",         # multicast
    "240.0.0.0/4",         # reserved, incl. broadcast 255.255.255.255
    "::/96",               # unspecified, loopback and deprecated IPv4-compatible addresses
    "64:ff9b::/96",        # NAT64: the gateway would connect to the embedded IPv4 for us
    "64:ff9b:1::/48",      # local-use NAT64
    "100::/64",            # discard-only
    "2001::/23",           # IETF protocol assignments, incl. Teredo 2001::/32
    "2001:db8::/32",       # documentation
    "2002::/16",           # 6to4: embeds an IPv4 address
    "fc00::/7",            # unique local
    "fe80::/10",           # link-local
    "fec0::/10",           # deprecated site-local
    "ff00::/8",            # multicast
))
_LOCALHOST_NAMES = ("localhost", "localhost.localdomain")


class FetchError(Exception):
    """An outbound request was refused or failed; `permanent` says whether retrying can help.

    Callers answer 503 (retry later) for temporary errors and 401/4xx for permanent ones.
    """

    def __init__(self, reason: str, *, status: int | None = None, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.permanent = permanent


class ForbiddenAddressError(OSError):
    """A host name resolved only to private or special-use addresses (raised inside aiohttp's connector)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_forbidden_ip(ip: str | IPAddress) -> bool:
    """True for private, special-use, multicast and reserved addresses, and for anything unparsable."""
    try:
        address = ip if isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)) else ipaddress.ip_address(ip)
    except ValueError:
        return True  # fail closed
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # ::ffff:a.b.c.d is a dual-stack socket's way of reaching a.b.c.d: judge that address.
        return is_forbidden_ip(address.ipv4_mapped)
    if any(address in network for network in FORBIDDEN_NETWORKS):
        return True
    return not address.is_global


def check_url(url: str | URL, *, allow_private: bool) -> URL:
    """Vet an outbound URL and return it parsed, without fragment; raise a permanent FetchError.

    Production (allow_private False): https only, default port, no user info, a host name
    or a public IP literal. allow_private (tests, local clusters) also allows http, any port,
    loopback and private addresses.
    """
    parsed = _parse(url)
    _check_scheme(parsed, allow_private)
    if not parsed.raw_host:
        raise FetchError(f"URL {parsed} has no host", permanent=True)
    if _has_userinfo(url, parsed):
        raise FetchError("URL must not carry a user name or password", permanent=True)
    _check_host(parsed.host or "", allow_private)
    _check_port(parsed, allow_private)
    return parsed.with_fragment(None)


def _parse(url: str | URL) -> URL:
    """Parse a URL string, refusing whitespace and control characters outright."""
    if isinstance(url, URL):
        return url
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise FetchError("URL contains whitespace or control characters", permanent=True)
    try:
        return URL(url)
    except (ValueError, TypeError) as exc:
        raise FetchError(f"malformed URL: {exc}", permanent=True) from None


def _check_scheme(url: URL, allow_private: bool) -> None:
    """https always; http only when private addresses are allowed; nothing else (data:, file:, gopher:, ...)."""
    allowed = ("https", "http") if allow_private else ("https",)
    if url.scheme not in allowed:
        shown = url.scheme or "(none)"
        raise FetchError(f"URL scheme {shown} is not allowed (only {' or '.join(allowed)})", permanent=True)


def _has_userinfo(original: str | URL, parsed: URL) -> bool:
    """Credentials in a URL, even an empty `@` (yarl drops it silently), are refused."""
    if parsed.raw_user is not None or parsed.raw_password is not None:
        return True
    return "@" in urlsplit(str(original)).netloc


def _check_port(url: URL, allow_private: bool) -> None:
    """Production allows only the scheme's default port, as activitypub-federation-rust does."""
    port = url.explicit_port
    if port is None or allow_private:
        return
    if port != {"https": 443, "http": 80}.get(url.scheme):
        raise FetchError(f"explicit port {port} is not allowed", permanent=True)


def _check_host(host: str, allow_private: bool) -> None:
    """IP literals must be public; names must not be numeric tricks or localhost."""
    address = _ip_literal(host)
    if address is not None:
        if not allow_private and is_forbidden_ip(address):
            raise FetchError(f"address {address} is private or special-use", permanent=True)
        return
    name = host.rstrip(".").lower()
    last_label = name.rsplit(".", 1)[-1]
    if last_label.isdigit() or last_label.startswith("0x"):
        # 2130706433, 127.1 or 0x7f.1: legacy IPv4 spellings that getaddrinfo would map to an address.
        raise FetchError(f"host {host} is neither a canonical IP address nor a domain name", permanent=True)
    if not allow_private and (name in _LOCALHOST_NAMES or name.endswith(".localhost")):
        raise FetchError(f"host {host} is local", permanent=True)


def _ip_literal(host: str) -> IPAddress | None:
    """The address when the host is an IPv4 or (zone-qualified) IPv6 literal, else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class GuardedResolver(AbstractResolver):
    """Resolve with an inner resolver, then drop forbidden addresses; raise when none remain.

    Plugged into the connector, this check happens at connect time for every hop and every
    new connection, so no name can be re-pointed at a private address after a check.
    """

    def __init__(self, inner: AbstractResolver | None = None, *, allow_private: bool = False) -> None:
        # inner defaults to aiohttp's ThreadedResolver (getaddrinfo), created on first use
        # because it binds to the running loop.
        self._inner = inner
        self._owns_inner = inner is None
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
    ) -> list[ResolveResult]:
        """The inner resolver's answers that are allowed; ForbiddenAddressError when none are."""
        if self._inner is None:
            self._inner = ThreadedResolver()
        results = await self._inner.resolve(host, port, family)
        if self._allow_private:
            return results
        allowed = [result for result in results if not is_forbidden_ip(result["host"])]
        if not allowed:
            found = ", ".join(sorted({result["host"] for result in results})) or "nothing"
            raise ForbiddenAddressError(f"{host} resolves to private or special-use addresses only ({found})")
        return allowed

    async def close(self) -> None:
        """Close the inner resolver if this guard created it."""
        if self._owns_inner and self._inner is not None:
            await self._inner.close()
