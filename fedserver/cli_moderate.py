"""`fedserver moderate ...`: the operator's moderation from the command line (see fedserver/moderation.py).

    fedserver moderate account suspend|silence|unsuspend ACCT [--reason TEXT]
    fedserver moderate domain block|silence|unblock DOMAIN [--reason TEXT]
    fedserver moderate domains [--json]
    fedserver moderate reports [--all] [--json]
    fedserver moderate report resolve ID [--reason TEXT]
    fedserver moderate log [--limit N] [--json]

Every action is logged with who did it (`--by`, by default `cli:` and the system user) and why.
"""

from __future__ import annotations

import argparse
import getpass
import json

from .config import Settings
from .db import open_database
from .moderation import ModerationError, act_on_account, act_on_domain, find_account, resolve_report
from .repo import moderation as repo

ERRORS = (ModerationError,)


def add_parsers(commands: argparse._SubParsersAction) -> None:
    moderate = commands.add_parser("moderate", help="suspend or silence accounts and domains, handle reports")
    moderate.add_argument("--by", metavar="NAME", help="who acts, for the log (default: cli:<system user>)")
    sub = moderate.add_subparsers(dest="moderate_command", required=True, metavar="COMMAND")
    account = sub.add_parser("account", help="suspend, silence or unsuspend an account (ACCT: name, "
                                             "name@domain or actor URL)")
    account.add_argument("action", choices=("suspend", "silence", "unsuspend"))
    account.add_argument("acct", metavar="ACCT")
    account.add_argument("--reason", default="", help="why (kept in the moderation log)")
    domain = sub.add_parser("domain", help="block, silence or unblock a domain and its subdomains")
    domain.add_argument("action", choices=("block", "silence", "unblock"))
    domain.add_argument("domain", metavar="DOMAIN")
    domain.add_argument("--reason", default="", help="why (published with the domain block)")
    domains = sub.add_parser("domains", help="the blocked and silenced domains")
    domains.add_argument("--json", action="store_true", help="machine-readable output")
    reports = sub.add_parser("reports", help="open reports, oldest first")
    reports.add_argument("--all", action="store_true", help="resolved ones too, newest first")
    reports.add_argument("--json", action="store_true", help="machine-readable output")
    report = sub.add_parser("report", help="resolve a report")
    report.add_argument("action", choices=("resolve",))
    report.add_argument("id", type=int, metavar="ID")
    report.add_argument("--reason", default="", help="how it was handled (kept in the moderation log)")
    log = sub.add_parser("log", help="the moderation log, newest first")
    log.add_argument("--limit", type=int, default=50, metavar="N")
    log.add_argument("--json", action="store_true", help="machine-readable output")


def _moderator(args: argparse.Namespace) -> str:
    return args.by or f"cli:{getpass.getuser()}"


async def run(settings: Settings, args: argparse.Namespace) -> int:
    """One `fedserver moderate` command."""
    async with open_database(settings) as pool:
        command = args.moderate_command
        local = settings.instance.domain
        if command == "account":
            actor = await find_account(pool, args.acct, local)
            print(await act_on_account(pool, actor, args.action, _moderator(args), args.reason, local))
        elif command == "domain":
            print(await act_on_domain(pool, args.domain, args.action, _moderator(args), args.reason, local))
        elif command == "report":
            print(await resolve_report(pool, args.id, _moderator(args), args.reason))
        else:
            async with pool.acquire() as conn:
                if command == "domains":
                    _print_domains(await repo.list_domains(conn), args.json)
                elif command == "reports":
                    _print_reports(await repo.list_reports(conn, resolved=args.all), args.json)
                else:
                    _print_log(await repo.read_log(conn, max(1, min(args.limit, 10_000))), args.json)
    return 0


def _print_domains(domains: list[repo.DomainAction], as_json: bool) -> None:
    if as_json:
        print(json.dumps([{"domain": d.domain, "severity": d.severity, "comment": d.public_comment,
                           "created_at": d.created_at.isoformat()} for d in domains], ensure_ascii=False))
        return
    if not domains:
        print("no domain is blocked or silenced")
    for d in domains:
        print(f"{d.domain:<40} {d.severity:<8} {d.public_comment}")


def report_json(r: repo.ReportRow) -> dict:
    return {"id": r.id, "target": r.target, "reporter": r.reporter, "category": r.category, "comment": r.comment,
            "status_ids": [str(i) for i in r.status_ids], "rule_ids": [str(i) for i in r.rule_ids],
            "forwarded": r.forwarded, "from_another_server": r.is_remote, "flag": r.flag_uri,
            "created_at": r.created_at.isoformat(),
            "resolved_at": r.resolved_at.isoformat() if r.resolved_at else None, "resolved_by": r.resolved_by}


def _print_reports(reports: list[repo.ReportRow], as_json: bool) -> None:
    if as_json:
        print(json.dumps([report_json(r) for r in reports], ensure_ascii=False))
        return
    if not reports:
        print("no open reports")
    for r in reports:
        state = f"resolved by {r.resolved_by}" if r.resolved_at else "open"
        source = "from another server" if r.is_remote else "local"
        print(f"#{r.id} {r.created_at:%Y-%m-%d %H:%M} {r.category:<9} {state}, {source}: {r.target} "
              f"({len(r.status_ids)} posts) reported by {r.reporter or 'a deleted account'}"
              + (f": {r.comment}" if r.comment else ""))


def _print_log(rows: list[repo.LogRow], as_json: bool) -> None:
    if as_json:
        print(json.dumps([{"id": r.id, "at": r.created_at.isoformat(), "moderator": r.moderator,
                           "action": r.action, "target": r.target, "reason": r.reason} for r in rows],
                         ensure_ascii=False))
        return
    for r in rows:
        print(f"{r.created_at:%Y-%m-%d %H:%M:%S} {r.moderator:<20} {r.action:<17} {r.target}"
              + (f" ({r.reason})" if r.reason else ""))
