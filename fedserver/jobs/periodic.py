"""A background loop that does one step now and then every few seconds until the process stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress

from ..db import database_down


async def run_periodically(step: Callable[[], Awaitable[object]], interval: float, stop: asyncio.Event, what: str,
                           log: logging.Logger) -> None:
    """Run `step` now and then every `interval` seconds until `stop` is set. The loop outlives any failure:
    a database outage is one warning line (the next round tries again), anything else a logged traceback."""
    while not stop.is_set():
        try:
            await step()
        except Exception as exc:  # keep the worker alive: log, then try again next round
            if database_down(exc):
                log.warning("%s waits for the database: %s", what, exc)
            else:
                log.exception("%s failed; retrying", what)
        with suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
