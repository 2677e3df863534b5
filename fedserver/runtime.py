"""What every background worker of a process shares: settings, pool, HTTP client, instance key,
the publisher and the dispatcher the composition root assembled."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Awaitable, Callable

import asyncpg

from .config import Settings
from .dispatch import Dispatcher
from .moderation import Moderation
from .net.http import HttpClient, Signer
from .publish import Publisher


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    pool: asyncpg.Pool
    http: HttpClient
    signer: Signer
    publisher: Publisher
    dispatcher: Dispatcher
    moderation: Moderation | None = None  # None: each worker reads the pool's own


# A background worker runs until the event is set, then returns.
Worker = Callable[[Runtime, asyncio.Event], Awaitable[None]]
