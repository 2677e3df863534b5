"""Typed keys for what every handler shares through `request.config_dict`."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from .config import Settings
from .net.http import HttpClient, Signer

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
HTTP = web.AppKey("http", HttpClient)
INSTANCE_SIGNER = web.AppKey("instance_signer", Signer)  # the instance actor's key: signs server-to-server GETs
