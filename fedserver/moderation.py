"""The operator's moderation: suspended and silenced accounts and domains, reports, and the log of who did what.

A suspended remote account or a blocked (suspended) domain is refused at the inbox before anything is
stored, never fetched and never delivered to (every outbound request asks `Moderation.refusal` first),
its activities still queued are dropped, and its posts are hidden wherever posts are read
(`repo.moderation.hidden_actor_sql`); follows with it end. Silencing keeps an account or a domain out of
the public timelines and the discovery page and changes nothing else. A suspended local account cannot
log in and its posts are hidden. A domain's action covers its subdomains. Every action is written to
`moderation_log` with who did it and why, in the transaction that makes it.

`Moderation` keeps what is refused in memory for the hot paths, read again from the database when it is
older than `REFRESH_SECONDS` (an action taken by `fedserver moderate` in another process counts within
that time) and at once after an action taken through it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import asyncpg

from activities.actor import Actor
from activities.urls import BadId, domain_of_input, id_host

from .repo import actors as actors_repo
from .repo import moderation as repo
from .repo import remote_actors as handles_repo

log = logging.getLogger("fedserver.moderation")

REFRESH_SECONDS = 2.0
MAX_REASON = 1000
SEVERITIES = {"block": "suspend", "silence": "silence"}


class ModerationError(Exception):
    """A moderation action that cannot be taken (unknown account, bad domain, our own server)."""


def covered(host: str, domains: frozenset[str]) -> str | None:
    """The moderated domain that covers `host[:port]`: the same host and port, or (for a domain given
    without a port) the host or a parent domain of it. Same rule as `repo.moderation.domain_match_sql`."""
    if host in domains:
        return host
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]", 1)[0] + "]"
    if name in domains:
        return name
    labels = name.split(".")
    for i in range(1, len(labels)):
        parent = ".".join(labels[i:])
        if parent in domains:
            return parent
    return None


@dataclass(frozen=True)
class _State:
    suspended_domains: frozenset[str] = frozenset()
    silenced_domains: frozenset[str] = frozenset()
    suspended_actors: frozenset[str] = frozenset()
    actors_by_host: dict[str, tuple[str, ...]] = field(default_factory=dict)  # suspended actor ids per host


def _by_host(uris: list[str]) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for uri in uris:
        try:
            found.setdefault(id_host(uri), []).append(uri)
        except BadId:
            continue
    return {host: tuple(items) for host, items in found.items()}


class Moderation:
    """What this server refuses, for the inbox, the outbound HTTP client and the inbox worker."""

    def __init__(self, pool: asyncpg.Pool | None, refresh_seconds: float = REFRESH_SECONDS):
        self.pool = pool
        self.refresh_seconds = refresh_seconds
        self._state = _State()
        self._loaded = float("-inf")
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Read the state again at the next question (after an action taken in this process)."""
        self._loaded = float("-inf")

    async def _current(self) -> _State:
        if self.pool is None or time.monotonic() - self._loaded < self.refresh_seconds:
            return self._state
        async with self._lock:
            if time.monotonic() - self._loaded >= self.refresh_seconds:
                try:
                    async with self.pool.acquire() as conn:
                        domains, actors = await repo.refused_state(conn)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("could not read the moderation state (the last one is kept): %s", exc)
                else:
                    self._state = _State(
                        frozenset(d for d, severity in domains if severity == "suspend"),
                        frozenset(d for d, severity in domains if severity == "silence"),
                        frozenset(actors), _by_host(actors))
                self._loaded = time.monotonic()
        return self._state

    async def refusal(self, host: str, url: str = "") -> str | None:
        """Why a request to `url` on `host[:port]` is refused (its domain is blocked, or it is a suspended
        actor's id or below it, as its posts are), or None."""
        state = await self._current()
        domain = covered(host.lower(), state.suspended_domains)
        if domain:
            return f"{domain} is blocked by this server's moderation"
        for actor in state.actors_by_host.get(host.lower(), ()):
            if url == actor or url.startswith(actor + "/"):
                return f"{actor} is suspended by this server's moderation"
        return None

    async def refuses_actor(self, uri: str) -> str | None:
        """Why activities of the actor `uri` are refused (suspended, or on a blocked domain), or None."""
        state = await self._current()
        if uri in state.suspended_actors:
            return f"{uri} is suspended by this server's moderation"
        try:
            host = id_host(uri)
        except BadId:
            return None
        domain = covered(host, state.suspended_domains)
        return f"{domain} is blocked by this server's moderation" if domain else None


async def find_account(pool: asyncpg.Pool, text: str, local_domain: str) -> Actor:
    """A known account by `name` (local), `name@domain`, `@name@domain` or actor URL; ModerationError if none."""
    wanted = text.strip()
    async with pool.acquire() as conn:
        if wanted.startswith(("http://", "https://")):
            actor = await actors_repo.get_actor_by_uri(conn, wanted)
        else:
            name, _, domain = wanted.lstrip("@").partition("@")
            actor = await handles_repo.get_actor_by_handle(conn, name, (domain or local_domain).lower()) \
                if name else None
    if actor is None:
        raise ModerationError(f"no known account {text}")
    return actor


def _reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON:
        raise ModerationError(f"the reason has more than {MAX_REASON} characters")
    return reason


def _acct(actor: Actor, local_domain: str) -> str:
    return f"{actor.username}@{actor.domain or local_domain}"


async def act_on_account(pool: asyncpg.Pool, actor: Actor, action: str, moderator: str, reason: str | None,
                         local_domain: str) -> str:
    """`suspend`, `silence` or `unsuspend` (which lifts both) an account; a line saying what was done."""
    reason = _reason(reason)
    if actor.actor_type == "Application" and actor.is_local:
        raise ModerationError("the instance actor cannot be moderated")
    async with pool.acquire() as conn, conn.transaction():
        if action == "suspend":
            await repo.set_actor_state(conn, actor.id, suspended=True)
            ended = await repo.end_follows_with(conn, [actor.id])
            done = f"suspended {_acct(actor, local_domain)}; {len(ended)} follows ended"
        elif action == "silence":
            await repo.set_actor_state(conn, actor.id, silenced=True)
            done = f"silenced {_acct(actor, local_domain)}"
        elif action == "unsuspend":
            await repo.set_actor_state(conn, actor.id, suspended=False, silenced=False)
            done = f"lifted the suspension and silence of {_acct(actor, local_domain)}"
        else:
            raise ModerationError(f"unknown account action {action!r}")
        await repo.log_action(conn, moderator, f"account.{action}", actor.uri, reason)
    log.info("moderation: %s", done, extra={"moderator": moderator, "reason": reason})
    return done


def moderated_domain(text: str, local_domain: str) -> str:
    """The domain an operator means, checked: a host name (with an optional port), never this server's."""
    try:
        domain = domain_of_input(text)
    except BadId as exc:
        raise ModerationError(str(exc)) from None
    if domain == local_domain or covered(local_domain, frozenset({domain})):
        raise ModerationError("this server's own domain cannot be blocked or silenced")
    return domain


async def act_on_domain(pool: asyncpg.Pool, text: str, action: str, moderator: str, reason: str | None,
                        local_domain: str) -> str:
    """`block`, `silence` or `unblock` a domain (and its subdomains); a line saying what was done."""
    reason = _reason(reason)
    domain = moderated_domain(text, local_domain)
    async with pool.acquire() as conn, conn.transaction():
        if action in SEVERITIES:
            await repo.upsert_domain(conn, domain, SEVERITIES[action], reason)
            ended = []
            if action == "block":
                ended = await repo.end_follows_with(conn, await repo.actors_of_domain(conn, domain))
            done = f"{'blocked' if action == 'block' else 'silenced'} {domain}" + (
                f"; {len(ended)} follows ended" if action == "block" else "")
        elif action == "unblock":
            if not await repo.delete_domain(conn, domain):
                raise ModerationError(f"{domain} is neither blocked nor silenced")
            done = f"lifted the block or silence of {domain}"
        else:
            raise ModerationError(f"unknown domain action {action!r}")
        await repo.log_action(conn, moderator, f"domain.{action}", domain, reason)
    log.info("moderation: %s", done, extra={"moderator": moderator, "reason": reason})
    return done


async def resolve_report(pool: asyncpg.Pool, report_id: int, moderator: str, reason: str | None = None) -> str:
    """Close an open report; a line saying so."""
    reason = _reason(reason)
    async with pool.acquire() as conn, conn.transaction():
        if not await repo.resolve_report(conn, report_id, moderator):
            found = await repo.get_report(conn, report_id)
            raise ModerationError(f"report {report_id} was already resolved" if found else
                                  f"no report {report_id}")
        await repo.log_action(conn, moderator, "report.resolve", str(report_id), reason)
    return f"resolved report {report_id}"
