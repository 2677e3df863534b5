"""`fedserver post | follow | unfollow | block | unblock | follow-requests | like | unlike | announce | unannounce | delete |
deliveries` and `fedserver account update`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Awaitable, Callable

import asyncpg

from activities.build import VISIBILITIES

from .config import Settings
from .db import open_database
from .app import build_publisher
from .federation import commands
from .federation.outbox import OutboxError
from .federation.targets import TargetError, resolve_object
from .moderation import Moderation
from .net.http import HttpClient
from .repo import deliveries as deliveries_repo

ERRORS = (OutboxError, TargetError)
DELIVERY_STATES = ("queued", "delivered", "failed", "gone")


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the publishing and delivery commands to the top-level parser."""
    post = commands.add_parser("post", help="publish a post (TEXT, or - to read standard input)")
    post.add_argument("name")
    post.add_argument("text")
    post.add_argument("--article", action="store_true", help="a blog post (Article) instead of a short Note")
    post.add_argument("--title", help="the article's title")
    post.add_argument("--summary", help="the article's summary")
    post.add_argument("--reply-to", metavar="URL", help="the id of the post this replies to")
    post.add_argument("--visibility", choices=VISIBILITIES, default="public")
    for verb, what in (("follow", "follow an actor (URL or @name@domain)"),
                       ("unfollow", "stop following an actor"),
                       ("block", "block an actor (URL or @name@domain): follows end both ways, its server is told"),
                       ("unblock", "lift a block")):
        sub = commands.add_parser(verb, help=what)
        sub.add_argument("name")
        sub.add_argument("actor", metavar="ACTOR_URL_OR_HANDLE")
    requests = commands.add_parser("follow-requests", help="list, accept or reject follow requests to a locked account")
    requests.add_argument("name")
    answer = requests.add_mutually_exclusive_group()
    answer.add_argument("--accept", metavar="ACTOR", help="approve this actor's request (URL or @name@domain)")
    answer.add_argument("--reject", metavar="ACTOR", help="refuse this actor's request")
    requests.add_argument("--json", action="store_true", help="machine-readable output (the list)")
    for verb, what in (("like", "like a post"), ("unlike", "undo a like"), ("announce", "share (boost) a post"),
                       ("unannounce", "undo a share"), ("delete", "delete one's own post")):
        sub = commands.add_parser(verb, help=what)
        sub.add_argument("name")
        sub.add_argument("object_url", metavar="OBJECT_URL")
    deliveries = commands.add_parser("deliveries", help="show the outbound delivery queue")
    deliveries.add_argument("--state", choices=DELIVERY_STATES)
    deliveries.add_argument("--limit", type=int, default=20, metavar="N")
    deliveries.add_argument("--json", action="store_true", help="machine-readable output")


def add_account_parsers(account_cmds: argparse._SubParsersAction) -> None:
    """Add `account update` (profile changes are sent to the followers as Update{Person})."""
    update = account_cmds.add_parser("update", help="change the display name or bio and tell the followers")
    update.add_argument("name")
    update.add_argument("--display-name", metavar="TEXT")
    update.add_argument("--summary", metavar="TEXT", help="the bio (plain text or HTML)")


async def _with_http(settings: Settings, run: Callable[[asyncpg.Pool, HttpClient], Awaitable[str]]) -> int:
    """Open the database and one HTTP client (honouring allow_private_addresses), run, print the id."""
    async with open_database(settings) as pool, HttpClient(settings) as http:
        http.host_policy = Moderation(pool).refusal  # never fetch from a blocked domain
        print(await run(pool, http))
    return 0


async def _with_pool(settings: Settings, run: Callable[[asyncpg.Pool], Awaitable[str]]) -> int:
    async with open_database(settings) as pool:
        print(await run(pool))
    return 0


async def _cmd_post(settings: Settings, args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text

    async def post(pool: asyncpg.Pool, http: HttpClient) -> str:
        if args.reply_to:
            # An unknown remote parent is fetched first, so its author is addressed (and rewarded).
            await resolve_object(pool, settings, http, args.reply_to)
        return await commands.create_post(
            pool, build_publisher(settings), args.name, text, article=args.article, title=args.title,
            summary=args.summary, in_reply_to=args.reply_to, visibility=args.visibility)

    return await _with_http(settings, post)


async def _cmd_follow(settings: Settings, args: argparse.Namespace) -> int:
    return await _with_http(settings, lambda pool, http: commands.follow(
        pool, build_publisher(settings), http, args.name, args.actor))


async def _cmd_unfollow(settings: Settings, args: argparse.Namespace) -> int:
    return await _with_pool(settings, lambda pool: commands.unfollow(pool, build_publisher(settings), args.name,
                                                                     args.actor))


async def _cmd_block(settings: Settings, args: argparse.Namespace) -> int:
    return await _with_http(settings, lambda pool, http: commands.block(
        pool, build_publisher(settings), http, args.name, args.actor))


async def _cmd_unblock(settings: Settings, args: argparse.Namespace) -> int:
    return await _with_pool(settings, lambda pool: commands.unblock(pool, build_publisher(settings), args.name,
                                                                    args.actor))


async def _cmd_like(settings: Settings, args: argparse.Namespace) -> int:
    return await _with_http(settings, lambda pool, http: commands.like(
        pool, build_publisher(settings), http, args.name, args.object_url))


async def _cmd_announce(settings: Settings, args: argparse.Namespace) -> int:
    return await _with_http(settings, lambda pool, http: commands.announce(
        pool, build_publisher(settings), http, args.name, args.object_url))


async def _cmd_unlike(settings: Settings, args: argparse.Namespace) -> int:
    return await _with_pool(settings, lambda pool: commands.unlike(pool, build_publisher(settings), args.name,
                                                                   args.object_url))


async def _cmd_unannounce(settings: Settings, args: argparse.Namespace) -> int:
    return await _with_pool(settings, lambda pool: commands.unannounce(pool, build_publisher(settings), args.name,
                                                                       args.object_url))


async def _cmd_delete(settings: Settings, args: argparse.Namespace) -> int:
    return await _with_pool(settings, lambda pool: commands.delete_object(pool, build_publisher(settings),
                                                                          args.name, args.object_url))


async def _cmd_account_update(settings: Settings, args: argparse.Namespace) -> int:
    if args.display_name is None and args.summary is None:
        raise OutboxError("nothing to change: give --display-name and/or --summary")
    return await _with_pool(settings, lambda pool: commands.update_profile(
        pool, build_publisher(settings), args.name, display_name=args.display_name, summary=args.summary))


async def _cmd_follow_requests(settings: Settings, args: argparse.Namespace) -> int:
    if args.accept or args.reject:
        return await _with_pool(settings, lambda pool: commands.answer_follow_request(
            pool, build_publisher(settings), args.name, args.accept or args.reject, accept=bool(args.accept)))
    async with open_database(settings) as pool:
        pending = await commands.follow_requests(pool, args.name)
    if args.json:
        print(json.dumps([{"actor": uri} for uri in pending], ensure_ascii=False, indent=2))
        return 0
    for uri in pending:
        print(uri)
    if not pending:
        print(f"no pending follow requests to {args.name}", file=sys.stderr)
    return 0


async def _cmd_deliveries(settings: Settings, args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 10_000:
        raise OutboxError("--limit must be from 1 to 10000")
    async with open_database(settings) as pool, pool.acquire() as conn:
        counts = await deliveries_repo.count_by_state(conn)
        rows = await deliveries_repo.list_latest(conn, state=args.state, limit=args.limit)
    if args.json:
        print(json.dumps({"counts": counts, "deliveries": [_row_json(r) for r in rows]}, ensure_ascii=False,
                         indent=2))
        return 0
    print("  ".join(f"{state} {counts[state]}" for state in DELIVERY_STATES))
    for r in rows:
        when = r.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S") if r.state == "queued" else "-"
        outcome = str(r.last_status or "") + (f" {r.last_error}" if r.last_error else "")
        print(f"{r.id:>8} {r.state:<9} {r.attempts:>2} {when:<19} {r.activity_uri} -> {r.inbox_uri}"
              + (f"  [{outcome.strip()[:120]}]" if outcome.strip() else ""))
    return 0


def _row_json(row: deliveries_repo.DeliveryRow) -> dict:
    return {
        "id": row.id, "activity": row.activity_uri, "inbox": row.inbox_uri, "state": row.state,
        "attempts": row.attempts, "next_attempt_at": row.next_attempt_at.isoformat(),
        "last_status": row.last_status, "last_error": row.last_error,
        "created_at": row.created_at.isoformat(),
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
    }


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], Awaitable[int]]] = {
    "post": _cmd_post,
    "follow": _cmd_follow,
    "unfollow": _cmd_unfollow,
    "block": _cmd_block,
    "unblock": _cmd_unblock,
    "like": _cmd_like,
    "unlike": _cmd_unlike,
    "announce": _cmd_announce,
    "unannounce": _cmd_unannounce,
    "delete": _cmd_delete,
    "deliveries": _cmd_deliveries,
    "follow-requests": _cmd_follow_requests,
    "account update": _cmd_account_update,
}
