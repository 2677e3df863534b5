"""The `fedserver` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable

from rewards import cli as rewards_cli
from storefront import cli as storefront_cli

from . import __version__, cli_backup, cli_doctor, cli_moderate, cli_outbox
from .accounts import (
    ROLES,
    AccountError,
    approve_signup,
    create_account,
    delete_account,
    ensure_instance_actor,
    reject_signup,
    set_role,
    validate_new_account,
)
from .app import build_publisher
from .config import ConfigError, Settings, load_settings
from .db import DatabaseError, migrate, migration_status, open_database
from .embedded import EmbeddedDatabaseError
from .logs import setup_logging
from .progress import progress
from .repo import actors as actors_repo

USER_ERRORS = (ConfigError, DatabaseError, EmbeddedDatabaseError, AccountError, *cli_outbox.ERRORS,
               *cli_backup.ERRORS, *storefront_cli.ERRORS, *cli_moderate.ERRORS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedserver", description="A federated home for workshops and co-ops.")
    parser.add_argument("--config", metavar="PATH", help="config file (default: $FEDSERVER_CONFIG, ./config.toml)")
    parser.add_argument("--version", action="version", version=f"fedserver {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the server (web and workers)")
    run.add_argument("--role", choices=("all", "web", "worker"), default="all",
                     help="all (default), web only, or background workers only")

    commands.add_parser("migrate", help="apply pending database migrations")

    account = commands.add_parser("account", help="manage local accounts")
    account_cmds = account.add_subparsers(dest="account_command", required=True, metavar="ACTION")
    create = account_cmds.add_parser("create", help="create an account")
    create.add_argument("name")
    create.add_argument("--display-name", default="", metavar="TEXT")
    create.add_argument("--kind", choices=("person", "organization"), default="person")
    create.add_argument("--locked", action="store_true", help="approve followers by hand")
    create.add_argument("--password-stdin", action="store_true", help="read a password from standard input")
    create.add_argument("--admin", action="store_true", help="an administrator (can log in at /admin)")
    listing = account_cmds.add_parser("list", help="list accounts")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.add_argument("--all", action="store_true", help="include deleted accounts")
    delete = account_cmds.add_parser("delete", help="delete an account (its name stays reserved)")
    delete.add_argument("name")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    role = account_cmds.add_parser("role", help="make an account an administrator or a regular user")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES, help="admin: may log in at /admin; user: may not")
    for verb, what in (("approve", "let a sign-up that waits for approval in"),
                       ("reject", "refuse a sign-up that waits for approval (the account is removed)")):
        decide = account_cmds.add_parser(verb, help=what)
        decide.add_argument("name")
    pending = account_cmds.add_parser("pending", help="list the sign-ups that wait for approval")
    pending.add_argument("--json", action="store_true", help="machine-readable output")
    cli_outbox.add_account_parsers(account_cmds)
    cli_outbox.add_parsers(commands)
    storefront_cli.add_parsers(commands, account_cmds)
    rewards_cli.add_parser(commands)
    cli_backup.add_parsers(commands)
    cli_moderate.add_parsers(commands)
    cli_doctor.add_parser(commands)
    return parser


def _read_password() -> str:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise AccountError("--password-stdin was given but standard input had no password")
    return password


async def _cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    async with open_database(settings, run_migrations=False) as pool, pool.acquire() as conn:
        pending = (await migration_status(conn)).pending
        with progress("migrating", total=len(pending), enabled=len(pending) > 1) as advance:
            applied = await migrate(conn, on_applied=lambda m: advance(description=f"{m.version:04d}_{m.name}"))
    if applied:
        for migration in applied:
            print(f"applied {migration.version:04d}_{migration.name}")
    else:
        print("database is up to date")
    return 0


async def _cmd_account_create(settings: Settings, args: argparse.Namespace) -> int:
    password = _read_password() if args.password_stdin else None
    new = validate_new_account(
        username=args.name, display_name=args.display_name, kind=args.kind, password=password, locked=args.locked,
        role="admin" if args.admin else "user",
    )
    async with open_database(settings) as pool:
        await ensure_instance_actor(pool, settings)
        actor = await create_account(pool, settings, new)
    print(f"created @{actor.acct}" + (" (administrator)" if new.role == "admin" else ""))
    print(f"actor: {actor.uri}")
    return 0


async def _cmd_account_list(settings: Settings, args: argparse.Namespace) -> int:
    async with open_database(settings) as pool, pool.acquire() as conn:
        accounts = await actors_repo.list_local_accounts(conn, include_deleted=args.all)
    if args.json:
        print(json.dumps([{
            "name": a.actor.username, "acct": a.actor.acct, "uri": a.actor.uri, "kind": a.actor.actor_type,
            "display_name": a.actor.display_name, "created_at": a.actor.created_at.isoformat(),
            "deleted": a.actor.deleted_at is not None, "role": a.role,
        } for a in accounts], ensure_ascii=False, indent=2))
        return 0
    if not accounts:
        print("no accounts yet: create one with `fedserver account create NAME`")
    for a in accounts:
        notes = ("  (administrator)" if a.role == "admin" else "") + ("  (deleted)" if a.actor.deleted_at else "")
        print(f"{a.actor.username:<30} {a.actor.actor_type:<12} {a.actor.display_name}{notes}")
    return 0


async def _cmd_account_delete(settings: Settings, args: argparse.Namespace) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            raise AccountError("refusing to delete without --yes when not run interactively")
        answer = input(f"Delete the account '{args.name}'? Its name stays reserved. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("not deleted")
            return 1
    async with open_database(settings) as pool:
        actor = await delete_account(pool, build_publisher(settings), args.name)
    print(f"deleted @{actor.acct}")
    return 0


async def _cmd_account_role(settings: Settings, args: argparse.Namespace) -> int:
    async with open_database(settings) as pool:
        actor = await set_role(pool, args.name, args.role)
    what = "an administrator (can log in at /admin)" if args.role == "admin" else "a regular user"
    print(f"@{actor.acct} is now {what}")
    return 0


async def _cmd_account_approve(settings: Settings, args: argparse.Namespace) -> int:
    async with open_database(settings) as pool:
        actor = await approve_signup(pool, args.name)
    print(f"@{actor.acct} is approved: it can log in now")
    return 0


async def _cmd_account_reject(settings: Settings, args: argparse.Namespace) -> int:
    async with open_database(settings) as pool:
        actor = await reject_signup(pool, args.name)
    print(f"the sign-up of @{actor.acct} is rejected and removed; the name is free again")
    return 0


async def _cmd_account_pending(settings: Settings, args: argparse.Namespace) -> int:
    async with open_database(settings) as pool, pool.acquire() as conn:
        pending = await actors_repo.list_pending_signups(conn)
    if args.json:
        print(json.dumps([{
            "name": s.actor.username, "acct": s.actor.acct, "uri": s.actor.uri,
            "created_at": s.actor.created_at.isoformat(), "reason": s.reason, "email": s.email,
        } for s in pending], ensure_ascii=False, indent=2))
        return 0
    if not pending:
        print("no sign-ups wait for approval")
    for signup in pending:
        print(f"{signup.actor.username:<30} {signup.actor.created_at:%Y-%m-%d %H:%M}  {signup.reason}")
    return 0


async def _cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from .server import run

    def ready(address: str) -> None:
        if address:
            print(f"fedserver is listening on {address} (public address {settings.base_url})", flush=True)
            print("create the first account with: fedserver account create NAME --password-stdin", flush=True)
        else:
            print("fedserver workers are running", flush=True)

    await run(settings, args.role, ready=ready)
    return 0


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], Awaitable[int]]] = {
    "run": _cmd_run,
    "migrate": _cmd_migrate,
    "account create": _cmd_account_create,
    "account list": _cmd_account_list,
    "account delete": _cmd_account_delete,
    "account role": _cmd_account_role,
    "account approve": _cmd_account_approve,
    "account reject": _cmd_account_reject,
    "account pending": _cmd_account_pending,
    **cli_outbox.COMMANDS,
    **cli_backup.COMMANDS,
    "rewards": rewards_cli.run,
    "product": lambda settings, args: storefront_cli.product(settings, args, build_publisher(settings)),
    "order": lambda settings, args: storefront_cli.order(settings, args, build_publisher(settings)),
    "account seller": storefront_cli.seller,
    "moderate": cli_moderate.run,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, load settings, run one command; user errors print one line and exit 1."""
    args = build_parser().parse_args(argv)
    if args.command == "doctor":  # it loads the configuration itself: a broken one is one of its findings
        return cli_doctor.main(args)
    key = args.command + (f" {args.account_command}" if args.command == "account" else "")
    try:
        settings = load_settings(args.config)
        setup_logging(settings.logging.level, settings.logging.format)
        if args.command != "run":
            # Keep one-shot commands quiet: their result is what they print.
            import logging

            logging.getLogger().setLevel(max(logging.WARNING, logging.getLogger().level))
        return asyncio.run(COMMANDS[key](settings, args))
    except USER_ERRORS as exc:
        print(f"fedserver: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
