"""`fedserver rewards policy | peer add URL | verify URL | balance ACCT | alerts | rank | settlement`."""

from __future__ import annotations

import argparse
import json
import sys

import aiohttp

from fedserver.config import Settings
from fedserver.db import open_database
from fedserver.progress import progress
from rewards.balance import TokenPolicy
from rewards.cli_rank import RankCommandError, add_rank_parser, rank_command
from rewards.cli_settlement import SettlementCommandError, add_settlement_parser, settlement_command
from rewards.client import FetchError, LogClient, fetch_token_policy, fetch_wellknown
from rewards.context import RewardsContext, http_session, load_context, own_member_keys
from rewards.federation import MemberKeys, add_member, write_policy_file
from rewards.minting import UnknownAccount, balance_document
from rewards.note import Ed25519Verifier, NoteError
from rewards.policy import PolicyError, build_policy
from rewards.store import advance_peer_head, get_peer_head, insert_alert, list_alerts, list_members, upsert_member
from rewards.verify import VerifyFailure, log_home, verify_log
from rewards.verify_balances import DIFFERS, OK, check_balances

EXIT_VERIFY_FAILED = 2


class RewardsCommandError(Exception):
    """A rewards command could not do its work; the message says why."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register `fedserver rewards ...` on the main parser."""
    rewards = commands.add_parser("rewards", help="reward receipts, the log, peers and verification")
    actions = rewards.add_subparsers(dest="rewards_command", required=True, metavar="ACTION")
    policy = actions.add_parser("policy", help="show the points policy, our keys and the federation policy")
    policy.add_argument("--json", action="store_true", help="machine-readable output")
    peer = actions.add_parser("peer", help="manage member instances")
    peer_actions = peer.add_subparsers(dest="peer_command", required=True, metavar="ACTION")
    add = peer_actions.add_parser("add", help="fetch URL/.well-known/rewards and pin it as a member log and witness")
    add.add_argument("url", help="the member's base URL, e.g. https://shop.example")
    add.add_argument("--quorum", metavar="RULE",
                     help="cosignatures needed to publish: all, any, majority, N or none (default: keep)")
    verify = actions.add_parser("verify", help="audit a member's log (or ours) and print point totals")
    verify.add_argument("url", help="the instance's base URL")
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    verify.add_argument("--balances", action="store_true",
                        help="also recompute every balance the instance serves from its verified log; "
                             "differences are alerts (exit 2)")
    balance = actions.add_parser("balance", help="an account's points, pending points, tokens and endorsement budget, "
                                                 "folded from the published log")
    balance.add_argument("acct", metavar="ACCT", help="a local account: name, @name or name@domain")
    balance.add_argument("--json", action="store_true", help="machine-readable output (what /rewards/balance serves)")
    alerts = actions.add_parser("alerts", help="list the alerts raised by monitoring member logs (newest first)")
    alerts.add_argument("--all", action="store_true", help="include resolved alerts")
    alerts.add_argument("--json", action="store_true", help="machine-readable output")
    add_rank_parser(actions)
    add_settlement_parser(actions)


async def run(settings: Settings, args: argparse.Namespace) -> int:
    """Dispatch a rewards subcommand; errors print one line and exit non-zero."""
    try:
        async with open_database(settings) as pool:
            if args.rewards_command == "alerts":
                return await _alerts(pool, args.all, args.json)
            ctx = await load_context(pool, settings)
            if args.rewards_command == "policy":
                return await _policy(ctx, pool, args.json)
            if args.rewards_command == "rank":
                return await rank_command(ctx, pool, args)
            if args.rewards_command == "settlement":
                return await settlement_command(ctx, pool, args)
            if args.rewards_command == "peer":
                return await _peer_add(ctx, pool, args.url, args.quorum)
            if args.rewards_command == "balance":
                return await _balance(ctx, pool, args.acct, args.json)
            return await _verify(ctx, pool, args.url, args.json, args.balances)
    except (RewardsCommandError, RankCommandError, SettlementCommandError, PolicyError, NoteError, FetchError, UnknownAccount) as exc:
        print(f"fedserver: error: {exc}", file=sys.stderr)
        return 1


async def _policy(ctx: RewardsContext, pool, as_json: bool) -> int:
    members = await list_members(pool)
    if as_json:
        print(json.dumps({"points": ctx.points.as_dict(), "origin": ctx.keys.origin, "keys": ctx.keys.vkeys(),
                          "members": [m.domain for m in members], "policy_file": str(ctx.policy_file.path),
                          "policy": build_policy(ctx.policy())}, indent=2, ensure_ascii=False))
        return 0
    print(f"points policy (version {ctx.points.version}):")
    print(json.dumps(ctx.points.as_dict(), indent=2, ensure_ascii=False))
    print(f"\nour keys (origin {ctx.keys.origin}):")
    for role, vkey in ctx.keys.vkeys().items():
        print(f"  {role:<9} {vkey}")
    print(f"\nmembers with pinned receipt keys: {', '.join(m.domain for m in members) or 'none'}")
    print(f"\nfederation policy ({ctx.policy_file.path}):")
    print(build_policy(ctx.policy()), end="")
    return 0


async def _peer_add(ctx: RewardsContext, pool, url: str, quorum: str | None) -> int:
    async with http_session(ctx.settings) as session:
        doc = await fetch_wellknown(session, url)
    domain = str(doc["domain"]).lower()
    if domain == ctx.keys.domain:
        raise RewardsCommandError(f"{url} is this instance")
    vkeys = {role: doc[role]["vkey"] for role in ("receipts", "log", "witness")}
    receipts = Ed25519Verifier.from_vkey(vkeys["receipts"])
    if receipts.name != f"{domain}/rewards/receipts" or not doc["log"]["vkey"].startswith(f"{domain}/rewards/v1+"):
        raise RewardsCommandError(f"{url}: key names do not match its domain {domain}")
    member = MemberKeys(domain, vkeys["log"], doc["log"]["url"], vkeys["witness"], doc["witness"]["url"])
    policy = add_member(ctx.policy_file.read_file_policy(), member, quorum, own_member_keys(ctx))
    write_policy_file(ctx.policy_file.path, policy)
    async with pool.acquire() as conn:
        await upsert_member(conn, domain, url.rstrip("/"), vkeys)
    print(f"pinned {domain}: log {doc['log']['origin']}, witness {doc['witness']['name']}")
    print(f"policy written to {ctx.policy_file.path} (quorum {policy.quorum})")
    return 0


async def _verify(ctx: RewardsContext, pool, url: str, as_json: bool, balances: bool = False) -> int:
    async with http_session(ctx.settings) as session:
        doc = await fetch_wellknown(session, url)
        origin = doc["log"]["origin"]
        keys = {m.domain: m.receipts for m in await list_members(pool)}
        keys[ctx.keys.domain] = ctx.keys.receipts_verifier()
        previous = await get_peer_head(pool, origin)
        tokens = await _token_policy(session, url)
        try:
            with progress(f"checking {origin}", enabled=not as_json) as advance:
                report = await verify_log(LogClient(session, doc["log"]["url"]), ctx.policy(), keys, previous,
                                          advance, tokens)
        except VerifyFailure as exc:
            print(f"fedserver: verification of {origin} FAILED: {exc}", file=sys.stderr)
            return EXIT_VERIFY_FAILED
        except aiohttp.ClientError as exc:
            raise RewardsCommandError(f"{url}: {exc}") from None
        if balances:
            if tokens is None:
                raise RewardsCommandError(f"{url} publishes no token policy: its balances cannot be recomputed")
            checks = await check_balances(session, url, report, tokens)
    await advance_peer_head(pool, origin, report.head())
    if not balances:
        _print_report(report, previous, as_json)
        return 0
    home = log_home(origin)
    for check in checks:
        if check.status == DIFFERS:
            await insert_alert(pool, origin, "balance-mismatch",
                               f"{check.name}@{home} ({check.account}) at log size {check.log_size}: "
                               f"{check.describe()}")
    _print_report(report, previous, as_json, [c.as_dict() for c in checks])
    if not as_json:
        for check in checks:
            line = {OK: "ok", DIFFERS: f"differs: {check.describe()}"}.get(check.status, f"not checked: {check.reason}")
            print(f"balance {check.name}@{home} at log size {check.log_size}: {line}")
    differing = sum(c.status == DIFFERS for c in checks)
    if differing:
        print(f"fedserver: {differing} of {len(checks)} balances served by {home} differ from the log "
              "(raised as balance-mismatch alerts)", file=sys.stderr)
        return EXIT_VERIFY_FAILED
    return 0


async def _token_policy(session, url: str) -> TokenPolicy | None:
    """The instance's published token policy, which its mints are checked against."""
    published = await fetch_token_policy(session, url)
    try:
        return None if published is None else TokenPolicy.from_dict(published)
    except ValueError as exc:
        raise RewardsCommandError(f"{url}/rewards/policy: {exc}") from None


async def _balance(ctx: RewardsContext, pool, acct: str, as_json: bool) -> int:
    async with pool.acquire() as conn:
        document = await balance_document(conn, ctx, acct)
    if as_json:
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return 0
    budget = document["budget"]
    print(f"{document['account']}  (log {document['log']['origin']} at size {document['log_size']}, "
          f"as of {document['as_of']})")
    print(f"  points   {document['points']:>10}  settled, not yet converted")
    print(f"  pending  {document['pending']:>10}  settling ({document['policy']['settlement_seconds']} s window)")
    print(f"  tokens   {document['tokens']:>10}  available ({document['tokens_minted']} minted in "
          f"{document['mints']} mints; spent {document['tokens_spent']}, redeemed {document['tokens_redeemed']}, "
          f"expired {document['tokens_expired']})")
    print(f"  budget   {budget['full_endorsements']:>10}  full endorsements ({budget['units']} of "
          f"{budget['capacity_units']} units)")
    return 0


def _print_report(report, previous, as_json: bool, balances: list[dict] | None = None) -> None:
    if as_json:
        doc = {"origin": report.origin, "size": report.size, "root": report.root.hex(),
               "cosigned_by": report.cosigned_by, "receipts": report.receipts,
               "totals": report.totals, "mints": report.mints, "tokens": report.tokens}
        if balances is not None:
            doc["balances"] = balances
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    since = f", consistent with size {previous.size} seen before" if previous else ""
    print(f"ok: {report.origin} size {report.size}, root verified{since}")
    print(f"cosigned by: {', '.join(report.cosigned_by) or 'nobody (quorum none)'}")
    print(f"{report.receipts} receipts, both signatures verified on each")
    if report.mints:
        print(f"{report.mints} mints, each signed by its account's own instance and within the token policy")
    for account, points in sorted(report.totals.items()):
        print(f"  {points:>8}  {account}")


async def _alerts(pool, include_resolved: bool, as_json: bool) -> int:
    alerts = await list_alerts(pool, include_resolved=include_resolved, limit=10_000)
    if as_json:
        print(json.dumps([{"id": a.id, "origin": a.origin, "kind": a.kind, "message": a.message,
                           "created_at": a.created_at.isoformat(), "seen": a.seen,
                           "last_seen_at": a.last_seen_at.isoformat(),
                           "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None,
                           "resolved_by": a.resolved_by} for a in alerts], ensure_ascii=False, indent=2))
        return 0
    if not alerts:
        print("no unresolved alerts" if not include_resolved else "no alerts")
    for a in alerts:
        state = f"resolved by @{a.resolved_by}" if a.resolved_at else f"unresolved, seen {a.seen}x"
        print(f"#{a.id}  {a.created_at:%Y-%m-%d %H:%M:%S} UTC  {a.origin}  {a.kind}  [{state}]  {a.message}")
    if any(a.resolved_at is None for a in alerts):
        print("an administrator resolves them at /admin/rewards/alerts", file=sys.stderr)
    return 0
