"""`fedserver rewards settlement --month YYYY-MM [--json|--csv]`: tokens redeemed per pair of member instances,
computed from the witnessed logs alone (every log of the federation policy, ours included)."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys

from rewards.client import FetchError, LogClient
from rewards.context import RewardsContext, http_session
from rewards.ranking import LogHead
from rewards.rankings import current_head, receipt_keys, verify_log_entries
from rewards.settlement import SettlementError, month_bounds, settle
from rewards.spend import Spend
from rewards.verify import VerifyFailure


class SettlementCommandError(Exception):
    """The settlement could not be computed; the message says why."""


def add_settlement_parser(actions: argparse._SubParsersAction) -> None:
    """Register `fedserver rewards settlement`."""
    settlement = actions.add_parser("settlement", help="tokens redeemed per pair of member instances in a month, "
                                                       "from the witnessed logs")
    settlement.add_argument("--month", required=True, metavar="YYYY-MM", help="the UTC calendar month")
    form = settlement.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print JSON: the pairs and the checkpoints used")
    form.add_argument("--csv", action="store_true", help="print CSV: one line per pair, with a header")


async def _spends_of(session, ctx: RewardsContext, policy, url: str, keys) -> tuple[LogHead, list[Spend]]:
    head = await current_head(session, policy, url)
    try:
        entries = await LogClient(session, url).entries(head.size)
    except FetchError as exc:
        raise VerifyFailure(f"cannot fetch entries: {exc}", "unavailable") from None
    checked = await asyncio.to_thread(verify_log_entries, entries, head, keys)
    return head, [e for e in checked if isinstance(e, Spend)]


async def settlement_command(ctx: RewardsContext, pool, args: argparse.Namespace) -> int:
    """Read every member log at its witnessed checkpoint and print the month's tokens redeemed per pair."""
    try:
        month_bounds(args.month)
    except SettlementError as exc:
        raise SettlementCommandError(str(exc)) from None
    policy = ctx.policy()
    keys = await receipt_keys(ctx, pool)
    urls = sorted({entry.url for entry in policy.logs if entry.url})
    heads: list[LogHead] = []
    spends: list[Spend] = []
    async with http_session(ctx.settings) as session:
        for url in urls:
            try:
                head, found = await _spends_of(session, ctx, policy, url, keys)
            except VerifyFailure as exc:
                raise SettlementCommandError(f"the log at {url} cannot be read to settle: {exc}") from None
            heads.append(head)
            spends += found
    pairs = settle(spends, args.month)
    if args.json:
        json.dump({"month": args.month, "pairs": [p.as_dict() for p in pairs],
                   "logs": [{"origin": h.origin, "size": h.size, "root": h.root} for h in heads]},
                  sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    elif args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["month", "buyer_instance", "maker_instance", "tokens_redeemed", "spends", "undone"])
        for p in pairs:
            writer.writerow([args.month, p.buyer_instance, p.maker_instance, p.tokens_redeemed, p.spends, p.undone])
    else:
        print(f"tokens redeemed in {args.month} (UTC), from {len(heads)} witnessed logs:")
        for h in heads:
            print(f"  log {h.origin} at size {h.size}")
        if not pairs:
            print("no tokens were spent in this month")
        for p in pairs:
            print(f"  {p.buyer_instance} -> {p.maker_instance}: {p.tokens_redeemed} tokens "
                  f"({p.spends} spends, {p.undone} undone)")
    return 0
