"""Shared pieces of HTTP signature handling: the error type, header access, dates and time windows."""

from __future__ import annotations

import calendar
import datetime as dt
import email.utils
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

# Mastodon (app/lib/signed_request.rb): 1 h clock skew, 5 min default expiry, 12 h cap.
CLOCK_SKEW_SECONDS = 3600
DEFAULT_EXPIRY_SECONDS = 300
MAX_EXPIRY_SECONDS = 12 * 3600

HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]]
_FOLD = re.compile(r"\r?\n[ \t]+")


class SignatureError(Exception):
    """A request signature is absent, malformed, insufficient, stale or wrong.

    str(error) is a short human-readable reason suitable for a 401 JSON body.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ParsedSignature:
    """A request signature that passed every check that needs no key."""

    scheme: str  # "draft-cavage" or "rfc9421"
    key_id: str
    algorithm: str  # as declared; "" when an RFC 9421 signature declares none
    covered: tuple[str, ...]  # signed header names / component identifiers
    signature: bytes
    signing_strings: tuple[bytes, ...]  # candidates, tried in order by verify_parsed
    created: float | None
    expires: float | None
    label: str | None = None  # RFC 9421 only


class Headers:
    """Read-only, case-insensitive view of request headers that keeps repeated fields."""

    def __init__(self, headers: HeadersLike) -> None:
        # hasattr, not isinstance(Mapping): the ABC check is slow for multidict's proxies.
        pairs = headers.items() if hasattr(headers, "items") else headers
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name.lower(), []).append(value)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._values

    def items(self) -> list[tuple[str, str]]:
        """Every (lowercased name, value) field line."""
        return [(name, value) for name, values in self._values.items() for value in values]

    def lines(self, name: str) -> list[str]:
        """Every field line of `name`, in order (empty list when absent)."""
        return list(self._values.get(name.lower(), []))

    def get(self, name: str) -> str | None:
        """All field lines of `name` trimmed and joined with ", ", or None when absent."""
        lines = self._values.get(name.lower())
        if lines is None:
            return None
        if len(lines) == 1:
            return _unfold(lines[0]).strip()
        return ", ".join(_unfold(line).strip() for line in lines)


def _unfold(value: str) -> str:
    """Replace obsolete line folding with a single space."""
    return _FOLD.sub(" ", value) if "\n" in value else value


def http_date(ts: float | None = None) -> str:
    """Format a Unix time as an RFC 7231 IMF-fixdate in GMT."""
    return email.utils.formatdate(time.time() if ts is None else ts, usegmt=True)


_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_IMF = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d\d) (\w{3}) (\d{4}) (\d\d):(\d\d):(\d\d) GMT")
_RFC850 = re.compile(
    r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), "
    r"(\d\d)-(\w{3})-(\d\d) (\d\d):(\d\d):(\d\d) GMT")
_ASCTIME = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (\w{3}) ([ \d]\d) (\d\d):(\d\d):(\d\d) (\d{4})")


@lru_cache(maxsize=256)  # every request signed in the same second carries the same Date
def parse_http_date(value: str) -> float:
    """Parse an HTTP date (IMF-fixdate, or the obsolete RFC 850 and asctime forms); raise ValueError."""
    value = value.strip()
    if m := _IMF.fullmatch(value):
        day, mon, year, hh, mm, ss = m.groups()
    elif m := _RFC850.fullmatch(value):
        day, mon, yy, hh, mm, ss = m.groups()
        year = str(2000 + int(yy) if int(yy) < 70 else 1900 + int(yy))
    elif m := _ASCTIME.fullmatch(value):
        mon, day, hh, mm, ss, year = m.groups()
    else:
        raise ValueError(f"not an HTTP date: {value!r}")
    if mon not in _MONTHS:
        raise ValueError(f"not an HTTP date: {value!r}")
    fields = (int(year), _MONTHS[mon], int(day), int(hh), int(mm), int(ss))
    return _to_epoch(*fields)


def _to_epoch(year: int, month: int, day: int, hh: int, mm: int, ss: int) -> float:
    """Convert UTC calendar fields to a Unix time, rejecting impossible dates."""
    try:
        dt.datetime(year, month, day, hh, mm, min(ss, 59))
    except ValueError as exc:
        raise ValueError(f"not an HTTP date: {exc}") from None
    return float(calendar.timegm((year, month, day, hh, mm, ss, 0, 0, 0)))


def check_time_window(created: float, expires: float | None, now: float) -> None:
    """Apply Mastodon's window: created <= now + 1 h; expiry (default created + 5 min + 1 h skew) not passed."""
    if created > now + CLOCK_SKEW_SECONDS:
        raise SignatureError("signature date is too far in the future")
    if expires is None:
        if now > created + DEFAULT_EXPIRY_SECONDS + CLOCK_SKEW_SECONDS:
            raise SignatureError("signature date is too old")
        return
    if expires < created:
        raise SignatureError("signature expires before it was created")
    if now > min(expires, created + MAX_EXPIRY_SECONDS):
        raise SignatureError("signature has expired")


def key_owner_url(key_id: str) -> str:
    """The document URL a keyId points into (the keyId without its fragment)."""
    return key_id.split("#", 1)[0]


def normalize_authority(authority: str, scheme: str) -> str:
    """Lowercase an authority and drop the scheme's default port (RFC 9421 section 2.2.3)."""
    authority = authority.strip().lower()
    default = {"https": ":443", "http": ":80"}.get(scheme.lower())
    if default and authority.endswith(default):
        authority = authority[: -len(default)]
    return authority


def split_target_url(url: str) -> tuple[str, str, str]:
    """Split an absolute URL into (scheme, authority, path-with-query) for the signing functions."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"not an absolute URL: {url!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme.lower(), parts.netloc, path


def to_bytes(text: str) -> bytes:
    """Encode a signing string; header bytes decoded with surrogateescape round-trip exactly."""
    return text.encode("utf-8", "surrogateescape")


def now_or(now: float | None) -> float:
    """The given time, or the current Unix time."""
    return time.time() if now is None else now
