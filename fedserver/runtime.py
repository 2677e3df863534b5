"""What every background worker of a process shares: settings, pool, HTTP client, instance key."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Awaitable, Callable

import asyncpg

from .config import Settings
from .net.http import HttpClient, Signer


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    pool: asyncpg.Pool
    http: HttpClient
    signer: Signer


# A background worker runs until the event is set, then returns.
Worker = Callable[[Runtime, asyncio.Event], Awaitable[None]]
