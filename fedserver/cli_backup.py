"""`fedserver backup PATH` and `fedserver restore PATH`."""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path
from typing import Self

from .backup import BackupError, Summary, backup, restore
from .config import Settings
from .progress import progress

ERRORS = (BackupError,)


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add `backup` and `restore` to the top-level parser."""
    made = commands.add_parser(
        "backup", help="write one archive of the database, media and rewards policy to PATH (the server may run)")
    made.add_argument("path", type=Path)
    made.add_argument("--json", action="store_true", help="machine-readable summary")
    back = commands.add_parser(
        "restore", help="put an archive back onto an empty database and data directory (the server stopped)")
    back.add_argument("path", type=Path)
    back.add_argument("--json", action="store_true", help="machine-readable summary")


class _Bars:
    """Backup's (stage, done, total) reports as one byte-counting bar per stage (fedserver.progress)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.stack = contextlib.ExitStack()
        self.stage: str | None = None
        self.done = 0
        self.advance = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.stack.close()
            self.stage, self.done = stage, 0
            self.advance = self.stack.enter_context(
                progress(stage, total or None, enabled=self.enabled, as_bytes=True))
        assert self.advance is not None
        self.advance(done - self.done, total=total or None)
        self.done = done

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()


def _print(summary: Summary, verb: str, args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps({
            "path": str(summary.path), "archive_bytes": summary.archive_bytes, "dump_bytes": summary.dump_bytes,
            "media_files": summary.media_files, "media_bytes": summary.media_bytes, "counts": summary.counts,
            "schema_version": summary.schema_version, "rewards_policy": summary.policy, "pg_tool": summary.pg_tool,
            "seconds": round(summary.seconds, 2)}, indent=2))
        return
    rows = ", ".join(f"{n} {table}" for table, n in summary.counts.items())
    print(f"{verb} {summary.path}: {summary.archive_bytes:,} bytes; database {summary.dump_bytes:,} bytes "
          f"({rows}); {summary.media_files} media files ({summary.media_bytes:,} bytes)"
          + ("; rewards policy" if summary.policy else "") + f"; {summary.seconds:.1f} s with {summary.pg_tool}")


async def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    with _Bars(enabled=not args.json) as bars:
        summary = await backup(settings, args.path, progress=bars)
    _print(summary, "backed up to", args)
    return 0


async def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    with _Bars(enabled=not args.json) as bars:
        summary = await restore(settings, args.path, progress=bars)
    _print(summary, "restored from", args)
    return 0


COMMANDS = {"backup": cmd_backup, "restore": cmd_restore}
