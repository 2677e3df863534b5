"""Changing one's own profile through the API: validate, store in one transaction, then federate.

The local change (name, bio, flags, posting preferences) commits as a whole. The Update{Person}
to followers is then sent by `federation.outbox.update_profile`, which stores and queues it in
its own transaction; if that step fails, the profile stays changed and the next change federates.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, fields
from html import escape

import asyncpg

from activities.build import VISIBILITIES

from ..federation import outbox
from ..publish import Publisher
from ..repo import api_accounts, api_settings
from ..repo import profiles as profiles_repo
from . import limits

log = logging.getLogger("fedserver.api")

_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


class ProfileError(ValueError):
    """A refused change; the message names the field and the rule."""


@dataclass(frozen=True)
class ProfileChange:
    """Fields a client asked to change; None leaves a field as it is."""

    display_name: str | None = None
    note: str | None = None
    locked: bool | None = None
    discoverable: bool | None = None
    indexable: bool | None = None
    privacy: str | None = None
    sensitive: bool | None = None
    language: str | None = None  # "" clears it

    @property
    def federated(self) -> bool:
        """True when the actor document other servers see changes."""
        return any(getattr(self, name) is not None
                   for name in ("display_name", "note", "locked", "discoverable", "indexable"))

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


def _has_control(text: str, allowed: str = "") -> bool:
    return any((ord(ch) < 32 and ch not in allowed) or ord(ch) == 127 for ch in text)


def check_change(change: ProfileChange) -> None:
    """Raise ProfileError for over-long or malformed values (Mastodon's limits: name 30, bio 500)."""
    if change.display_name is not None:
        if len(change.display_name) > limits.MAX_DISPLAY_NAME:
            raise ProfileError(f"display_name is too long (maximum is {limits.MAX_DISPLAY_NAME} characters)")
        if _has_control(change.display_name):
            raise ProfileError("display_name must not contain control characters")
    if change.note is not None:
        if len(change.note) > limits.MAX_NOTE:
            raise ProfileError(f"note is too long (maximum is {limits.MAX_NOTE} characters)")
        if _has_control(change.note, "\n\r\t"):
            raise ProfileError("note must not contain control characters other than line breaks")
    if change.privacy is not None and change.privacy not in VISIBILITIES:
        raise ProfileError(f"source[privacy] must be one of {', '.join(VISIBILITIES)}")
    if change.language and not _LANGUAGE.match(change.language):
        raise ProfileError("source[language] must be an ISO 639 code such as ko or en")


def _linkify(line: str) -> str:
    out, last = [], 0
    for match in _URL.finditer(line):
        url = match.group(0)
        out.append(escape(line[last:match.start()]))
        out.append(f'<a href="{escape(url)}" rel="nofollow noopener noreferrer" target="_blank">{escape(url)}</a>')
        last = match.end()
    out.append(escape(line[last:]))
    return "".join(out)


def note_html(text: str) -> str:
    """A bio as Mastodon renders it: plain text escaped, blank lines → paragraphs, line breaks → <br>, links."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()) if p.strip()]
    return "".join("<p>" + "<br>".join(_linkify(line) for line in p.split("\n")) + "</p>" for p in paragraphs)


async def _store(conn: asyncpg.Connection, account_id: int, change: ProfileChange) -> bool:
    if change.display_name is not None or change.note is not None:
        summary = note_html(change.note) if change.note is not None else None
        name = change.display_name.strip() if change.display_name is not None else None
        if not await profiles_repo.update_profile(conn, account_id, display_name=name, summary_html=summary):
            return False
    if change.locked is not None or change.discoverable is not None or change.indexable is not None:
        if not await api_accounts.update_account_flags(conn, account_id, locked=change.locked,
                                                       discoverable=change.discoverable, indexable=change.indexable):
            return False
    if change.privacy is not None or change.sensitive is not None or change.language is not None:
        await api_settings.update_posting_preferences(
            conn, account_id, visibility=change.privacy, sensitive=change.sensitive,
            language=change.language or None, clear_language=change.language == "")
    return True


async def update_own_profile(pool: asyncpg.Pool, publisher: Publisher, account_id: int, username: str,
                             change: ProfileChange) -> bool:
    """Apply a change and send Update{Person}, in one transaction; False if the account is gone."""
    check_change(change)
    if change.empty:
        return True
    async with pool.acquire() as conn, conn.transaction():
        if not await _store(conn, account_id, change):
            return False
        if change.federated:
            await outbox.update_profile(conn, publisher, await outbox.author(conn, username))
    return True
