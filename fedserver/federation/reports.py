"""Reports: a local person reports an account (and some of its posts) to this server's operator.

With `forward`, a report of a remote account also goes to that account's server as a `Flag` from the
instance actor, as Mastodon sends it (the reporter stays unnamed there). A `Flag` from another server
becomes a report here (`inbound/flags.py`). Reports wait for the operator (`fedserver moderate reports`, the admin
pages); nothing is done to the reported account by the report itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from activities.actor import Actor
from activities.build import activity_uri, build_flag, new_object_id

from ..publish import Publisher
from ..repo import actors as actors_repo
from ..repo import moderation as repo

CATEGORIES = ("spam", "legal", "violation", "other")
MAX_COMMENT = 1000
MAX_STATUSES = 50


class ReportError(Exception):
    """A report that cannot be filed as asked."""


@dataclass(frozen=True)
class NewReport:
    status_ids: list[int]
    comment: str
    category: str
    rule_ids: list[int]
    forward: bool


def check_report(report: NewReport, rules: int) -> None:
    """Refuse what a report may not say (pure): unknown category, too long, unknown rules, too many posts."""
    if report.category not in CATEGORIES:
        raise ReportError(f"category must be one of {', '.join(CATEGORIES)}")
    if len(report.comment) > MAX_COMMENT:
        raise ReportError(f"the comment has more than {MAX_COMMENT} characters")
    if len(report.status_ids) > MAX_STATUSES:
        raise ReportError(f"at most {MAX_STATUSES} posts per report")
    unknown = [i for i in report.rule_ids if not 1 <= i <= rules]
    if unknown:
        raise ReportError(f"no rule {unknown[0]} on this server (see /api/v1/instance/rules)")
    if report.category == "violation" and not report.rule_ids:
        raise ReportError("a report of a rule violation names the rules (rule_ids)")


async def file_report(pool: asyncpg.Pool, publisher: Publisher, reporter: Actor, target: Actor,
                      report: NewReport) -> repo.ReportRow:
    """Store a local person's report (and forward it as a Flag when asked and the account is remote)."""
    check_report(report, len(publisher.settings.instance.rules))
    if target.id == reporter.id:
        raise ReportError("you cannot report yourself")
    wanted = list(dict.fromkeys(report.status_ids))
    async with pool.acquire() as conn, conn.transaction():
        statuses = await repo.statuses_of(conn, target.id, wanted)
        if len(statuses) != len(wanted):
            stray = min(set(wanted) - {i for i, _ in statuses})
            raise ReportError(f"status {stray} is not a post of the reported account")
        forward = report.forward and not target.is_local
        flag_uri = None
        if forward:
            instance = await actors_repo.get_instance_account(conn)
            assert instance is not None
            flag_uri = activity_uri(instance.actor.uri, "flag", new_object_id())
            flag = build_flag(instance.actor.uri, flag_uri, target.uri, [uri for _, uri in statuses], report.comment)
            await publisher.publish(conn, instance.actor, flag, [target.inbox_uri], object_uri=target.uri)
        report_id = await repo.insert_report(
            conn, reporter_id=reporter.id, target_id=target.id, status_ids=[i for i, _ in statuses],
            comment=report.comment, category=report.category, rule_ids=report.rule_ids, forwarded=forward,
            is_remote=False, flag_uri=flag_uri)
        assert report_id is not None
        found = await repo.get_report(conn, report_id)
    assert found is not None
    return found
