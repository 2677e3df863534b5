"""Typed keys for what every handler shares through `request.config_dict`."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from ..config import Settings

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
