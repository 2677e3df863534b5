"""SQL for the operator's moderation: account and domain actions, reports, and the log of who did what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class DomainAction:
    domain: str
    severity: str  # 'silence' or 'suspend'
    public_comment: str
    created_at: datetime


@dataclass(frozen=True)
class ReportRow:
    id: int
    reporter_id: int | None
    reporter: str | None  # the reporter's actor id (URI)
    target_id: int
    target: str
    status_ids: list[int]
    comment: str
    category: str
    rule_ids: list[int]
    forwarded: bool
    is_remote: bool
    flag_uri: str | None
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None


@dataclass(frozen=True)
class LogRow:
    id: int
    created_at: datetime
    moderator: str
    action: str
    target: str
    reason: str


async def log_action(conn: asyncpg.Connection, moderator: str, action: str, target: str, reason: str) -> None:
    await conn.execute("INSERT INTO moderation_log (moderator, action, target, reason) VALUES ($1, $2, $3, $4)",
                       moderator, action, target, reason)


async def read_log(conn: asyncpg.Connection, limit: int) -> list[LogRow]:
    rows = await conn.fetch("SELECT * FROM moderation_log ORDER BY id DESC LIMIT $1", limit)
    return [LogRow(**dict(r)) for r in rows]


async def set_actor_state(conn: asyncpg.Connection, actor_id: int, *, suspended: bool | None = None,
                          silenced: bool | None = None) -> None:
    """Suspend or silence an actor (True), lift it (False), leave it (None)."""
    await conn.execute(
        """UPDATE actors SET
               suspended_at = CASE WHEN $2::boolean IS NULL THEN suspended_at
                                   WHEN $2 THEN coalesce(suspended_at, now()) END,
               silenced_at = CASE WHEN $3::boolean IS NULL THEN silenced_at
                                  WHEN $3 THEN coalesce(silenced_at, now()) END
           WHERE id = $1""",
        actor_id, suspended, silenced,
    )


async def end_follows_with(conn: asyncpg.Connection, actor_ids: list[int]) -> list[tuple[int, int]]:
    """Remove every follow between these actors and anyone; (follower, followee) of those removed."""
    rows = await conn.fetch(
        """DELETE FROM follows WHERE follower_id = ANY($1::bigint[]) OR followee_id = ANY($1::bigint[])
           RETURNING follower_id, followee_id""", actor_ids)
    return [(r["follower_id"], r["followee_id"]) for r in rows]


async def actors_of_domain(conn: asyncpg.Connection, domain: str) -> list[int]:
    """Remote actors on `domain` or its subdomains (any port)."""
    rows = await conn.fetch(
        f"SELECT id FROM actors a WHERE NOT a.is_local AND {domain_match_sql('a.domain', '$1')}", domain)
    return [r["id"] for r in rows]


def domain_match_sql(actor_domain: str, blocked: str) -> str:
    """SQL true when an actor's `host[:port]` falls under a moderated domain: the same host and port, or
    (for a domain given without a port) the host itself or one of its subdomains on any port."""
    host = f"split_part({actor_domain}, ':', 1)"
    return (f"({actor_domain} = {blocked} OR (strpos({blocked}, ':') = 0 AND "
            f"({host} = {blocked} OR right({host}, length({blocked}) + 1) = '.' || {blocked})))")


def hidden_actor_sql(actor: str, *, silenced_too: bool = False) -> str:
    """SQL true when the actor row `actor` is suspended (or, with `silenced_too`, silenced), by itself or by
    its domain."""
    column = "coalesce(a_m.suspended_at, a_m.silenced_at)" if silenced_too else "a_m.suspended_at"
    severities = "('silence', 'suspend')" if silenced_too else "('suspend')"
    return f"""EXISTS (SELECT 1 FROM actors a_m WHERE a_m.id = {actor} AND ({column} IS NOT NULL
                   OR (NOT a_m.is_local AND EXISTS (SELECT 1 FROM domain_moderation d_m
                       WHERE d_m.severity IN {severities} AND {domain_match_sql('a_m.domain', 'd_m.domain')}))))"""


async def upsert_domain(conn: asyncpg.Connection, domain: str, severity: str, public_comment: str) -> None:
    await conn.execute(
        """INSERT INTO domain_moderation (domain, severity, public_comment) VALUES ($1, $2, $3)
           ON CONFLICT (domain) DO UPDATE SET severity = EXCLUDED.severity,
               public_comment = EXCLUDED.public_comment, updated_at = now()""",
        domain, severity, public_comment,
    )


async def delete_domain(conn: asyncpg.Connection, domain: str) -> bool:
    status = await conn.execute("DELETE FROM domain_moderation WHERE domain = $1", domain)
    return not status.endswith(" 0")


async def list_domains(conn: asyncpg.Connection) -> list[DomainAction]:
    rows = await conn.fetch(
        "SELECT domain, severity, public_comment, created_at FROM domain_moderation ORDER BY domain")
    return [DomainAction(**dict(r)) for r in rows]


async def refused_state(conn: asyncpg.Connection) -> tuple[list[tuple[str, str]], list[str]]:
    """(domain, severity) of every moderated domain, and the ids (URIs) of suspended remote actors."""
    domains = await conn.fetch("SELECT domain, severity FROM domain_moderation")
    actors = await conn.fetch("SELECT uri FROM actors WHERE suspended_at IS NOT NULL AND NOT is_local")
    return [(r["domain"], r["severity"]) for r in domains], [r["uri"] for r in actors]


async def insert_report(conn: asyncpg.Connection, *, reporter_id: int | None, target_id: int, status_ids: list[int],
                        comment: str, category: str, rule_ids: list[int], forwarded: bool, is_remote: bool,
                        flag_uri: str | None) -> int | None:
    """Store a report; None when a report with this Flag id was stored before."""
    return await conn.fetchval(
        """INSERT INTO reports (reporter_id, target_id, status_ids, comment, category, rule_ids, forwarded,
                                is_remote, flag_uri)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (flag_uri) DO NOTHING RETURNING id""",
        reporter_id, target_id, status_ids, comment, category, rule_ids, forwarded, is_remote, flag_uri,
    )


_REPORT = """SELECT r.id, r.reporter_id, ra.uri AS reporter, r.target_id, ta.uri AS target, r.status_ids, r.comment,
                    r.category, r.rule_ids, r.forwarded, r.is_remote, r.flag_uri, r.created_at, r.resolved_at,
                    r.resolved_by
             FROM reports r JOIN actors ta ON ta.id = r.target_id LEFT JOIN actors ra ON ra.id = r.reporter_id"""


async def get_report(conn: asyncpg.Connection, report_id: int) -> ReportRow | None:
    row = await conn.fetchrow(f"{_REPORT} WHERE r.id = $1", report_id)
    return ReportRow(**dict(row)) if row else None


async def list_reports(conn: asyncpg.Connection, *, resolved: bool, limit: int = 200) -> list[ReportRow]:
    """Open reports, oldest first (or, with `resolved`, every report, newest first)."""
    where, order = ("", "DESC") if resolved else ("WHERE r.resolved_at IS NULL", "ASC")
    rows = await conn.fetch(f"{_REPORT} {where} ORDER BY r.id {order} LIMIT $1", limit)
    return [ReportRow(**dict(r)) for r in rows]


async def resolve_report(conn: asyncpg.Connection, report_id: int, moderator: str) -> bool:
    """Mark an open report resolved; False when there is no such open report."""
    status = await conn.execute(
        "UPDATE reports SET resolved_at = now(), resolved_by = $2 WHERE id = $1 AND resolved_at IS NULL",
        report_id, moderator)
    return not status.endswith(" 0")


async def statuses_of(conn: asyncpg.Connection, actor_id: int, status_ids: list[int]) -> list[tuple[int, str]]:
    """(id, uri) of those statuses that the actor wrote."""
    rows = await conn.fetch("SELECT id, uri FROM objects WHERE actor_id = $1 AND id = ANY($2::bigint[])",
                            actor_id, status_ids)
    return [(r["id"], r["uri"]) for r in rows]


async def local_objects_by_uri(conn: asyncpg.Connection, uris: list[str]) -> list[tuple[int, int]]:
    """(object id, author id) of the local objects among `uris`."""
    rows = await conn.fetch("SELECT id, actor_id FROM objects WHERE is_local AND uri = ANY($1::text[])", uris)
    return [(r["id"], r["actor_id"]) for r in rows]
