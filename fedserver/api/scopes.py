"""OAuth scopes as Mastodon defines them: parsing, checking what an app may ask for, what a token grants.

Pure. `read` and `write` cover their `read:*` / `write:*` sub-scopes; the legacy `follow`
covers the follow, block and mute sub-scopes (Mastodon `config/initializers/doorkeeper.rb`).
"""

from __future__ import annotations

READ_SCOPES = (
    "read:accounts", "read:blocks", "read:bookmarks", "read:favourites", "read:filters", "read:follows",
    "read:lists", "read:mutes", "read:notifications", "read:search", "read:statuses", "read:storefront",
)
WRITE_SCOPES = (
    "write:accounts", "write:blocks", "write:bookmarks", "write:conversations", "write:favourites",
    "write:filters", "write:follows", "write:lists", "write:media", "write:mutes", "write:notifications",
    "write:reports", "write:statuses", "write:storefront",
)
FOLLOW_SCOPES = ("read:blocks", "read:follows", "read:mutes", "write:blocks", "write:follows", "write:mutes")
ADMIN_READ_SCOPES = tuple(f"admin:read:{name}" for name in (
    "accounts", "reports", "domain_allows", "domain_blocks", "ip_blocks", "email_domain_blocks",
    "canonical_email_blocks"))
ADMIN_WRITE_SCOPES = tuple(name.replace("admin:read:", "admin:write:") for name in ADMIN_READ_SCOPES)
TOP_LEVEL = ("read", "write", "follow", "push", "profile", "admin:read", "admin:write")
ALL_SCOPES = frozenset(TOP_LEVEL + READ_SCOPES + WRITE_SCOPES + ADMIN_READ_SCOPES + ADMIN_WRITE_SCOPES)
# What metadata advertises: every scope an app may register.
SUPPORTED_SCOPES = sorted(ALL_SCOPES, key=lambda s: (s.count(":"), s))
DEFAULT_SCOPES = ("read",)

_IMPLIES = {
    "read": READ_SCOPES,
    "write": WRITE_SCOPES,
    "follow": FOLLOW_SCOPES,
    "admin:read": ADMIN_READ_SCOPES,
    "admin:write": ADMIN_WRITE_SCOPES,
}


class ScopeError(ValueError):
    """Scopes that are unknown or not allowed; the message names them."""


def parse_scopes(raw: str | list[str] | None, default: tuple[str, ...] = DEFAULT_SCOPES) -> tuple[str, ...]:
    """Space- or plus-separated scopes (or a list) as a tuple without duplicates; unknown ones raise."""
    if raw is None or raw == "" or raw == []:
        return default
    parts = raw.replace("+", " ").split() if isinstance(raw, str) else [str(p) for s in raw for p in s.split()]
    unknown = [p for p in parts if p not in ALL_SCOPES]
    if unknown:
        raise ScopeError(f"unknown scope {', '.join(unknown)}; known scopes are read, write, follow, push, "
                         "profile and their sub-scopes such as read:accounts")
    return tuple(dict.fromkeys(parts))


def expand(scopes: tuple[str, ...] | list[str]) -> frozenset[str]:
    """The scopes and every sub-scope they imply."""
    out = set(scopes)
    for scope in scopes:
        out.update(_IMPLIES.get(scope, ()))
    return frozenset(out)


def check_allowed(requested: tuple[str, ...], registered: tuple[str, ...]) -> None:
    """Raise ScopeError unless every requested scope is within what the app registered."""
    allowed = expand(registered)
    outside = [s for s in requested if s not in allowed]
    if outside:
        raise ScopeError(f"the app did not register the scope {', '.join(outside)}")


def grants(token_scopes: tuple[str, ...], any_of: tuple[str, ...]) -> bool:
    """True when a token's scopes cover at least one of `any_of`."""
    held = expand(token_scopes)
    return any(scope in held for scope in any_of)


def format_scopes(scopes: tuple[str, ...] | list[str]) -> str:
    """The space-separated form OAuth uses."""
    return " ".join(scopes)
