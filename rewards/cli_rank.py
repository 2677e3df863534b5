"""`fedserver rewards rank --kind posts|products|makers [--window 7d] [--json] [--at FILE]`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rewards.context import RewardsContext, http_session
from rewards.ranking import DEFAULT_WINDOW, RANK_KINDS, WINDOWS, RankingError, check_request
from rewards.rankings import Ranker, RankingFailure


class RankCommandError(Exception):
    """The ranking could not be computed or reproduced; the message says why."""


def add_rank_parser(actions: argparse._SubParsersAction) -> None:
    """Register `fedserver rewards rank`."""
    rank = actions.add_parser("rank", help="the open ranking of posts, products or makers from the verified logs")
    rank.add_argument("--kind", help=f"what to rank: {', '.join(RANK_KINDS)}")
    rank.add_argument("--window", default=DEFAULT_WINDOW,
                      help=f"how far back from the newest receipt: {', '.join(WINDOWS)} (default {DEFAULT_WINDOW})")
    rank.add_argument("--json", action="store_true", help="print the canonical JSON that /rewards/ranking serves")
    rank.add_argument("--at", metavar="FILE",
                      help="recompute a saved /rewards/ranking answer from exactly the checkpoints it lists "
                           "(prints its JSON)")


async def rank_command(ctx: RewardsContext, pool, args: argparse.Namespace) -> int:
    """Compute (or, with --at, reproduce) a ranking and print it."""
    saved = _read_saved(args.at) if args.at else None
    if saved is None:
        if not args.kind:
            raise RankCommandError("--kind is required: posts, products or makers (or --at FILE)")
        try:
            check_request(args.kind, args.window)
        except RankingError as exc:
            raise RankCommandError(str(exc)) from None
    async with http_session(ctx.settings) as session:
        ranker = Ranker(ctx, pool, session)
        try:
            body = await ranker.live(args.kind, args.window) if saved is None else await ranker.at(saved)
        except RankingFailure as exc:
            raise RankCommandError(f"cannot recompute {args.at}: {exc}") from None
    if args.json or saved is not None:
        sys.stdout.write(body.decode())
    else:
        _print_table(json.loads(body))
    return 0


def _read_saved(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise RankCommandError(f"cannot read {path}: {exc.strerror or exc}") from None


def _print_table(doc: dict) -> None:
    print(f"{doc['kind']} over {doc['window']} up to {doc['as_of']} "
          f"(formula {doc['formula']['name']} v{doc['formula']['version']})")
    for head in doc["logs"]:
        print(f"  log {head['origin']} at size {head['size']}")
    if not doc["ranking"]:
        print("nothing ranked in this window")
    for entry in doc["ranking"]:
        name = entry.get("object") or entry["maker"]
        print(f"{entry['rank']:>4}  {entry['score']:>6}  {entry['actors']:>4} actors  {name}")
