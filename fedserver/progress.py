"""Progress bars for long commands (migrate, backup, restore, rewards verify), drawn on standard error.

    from fedserver.progress import progress

    with progress("applying migrations", total=len(pending), enabled=not args.json) as advance:
        for migration in pending:
            ...
            advance()                              # one more step done
    advance(5)                                     # five more steps
    advance(0, total=n)                            # set (or change) the total once it is known
    advance(1, description="0042_media")           # and/or change the label before the bar

`total=None` shows a pulsing bar with the count until a total is given; `as_bytes=True` shows the
counts as sizes (`12.3/80.0 MB`) with a transfer rate, for archives and dumps.

A bar is drawn only when `enabled` is true and standard error is a terminal; otherwise `advance`
does nothing, so scripts, tests, pipes and `--json` output stay clean. The bar is removed when the
block ends, leaving only what the command prints. Standard output is never touched. `advance` may be
called from any thread (a `pg_dump` reader, `asyncio.to_thread`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Advance(Protocol):
    """What `progress` yields: count `n` more steps done, optionally with a new total or label."""

    def __call__(self, n: int = 1, *, total: int | None = None, description: str | None = None) -> None: ...


def drawing(enabled: bool = True) -> bool:
    """Whether `progress(..., enabled=enabled)` would draw a bar here (standard error is a terminal)."""
    return enabled and sys.stderr is not None and sys.stderr.isatty()


def _nothing(n: int = 1, *, total: int | None = None, description: str | None = None) -> None:
    """The `advance` of a bar that is not drawn."""


@contextmanager
def progress(description: str, total: int | None = None, *, enabled: bool = True,
             as_bytes: bool = False) -> Iterator[Advance]:
    """A progress bar on standard error for the `with` block; yields `advance(n=1, *, total=None, description=None)`."""
    if not drawing(enabled):
        yield _nothing
        return
    from rich.console import Console  # imported only when a bar is drawn: commands start faster
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    counts = (DownloadColumn(), TransferSpeedColumn()) if as_bytes else (MofNCompleteColumn(),)
    # redirect_stdout off: the command's own output must stay on standard output, not move to the bar's stream.
    bar = Progress(TextColumn("{task.description}"), BarColumn(), *counts, TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True, redirect_stdout=False)
    with bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1, *, total: int | None = None, description: str | None = None) -> None:
            bar.update(task, advance=n, total=total, description=description)

        yield advance
