"""Typed keys for what every handler shares through `request.config_dict`."""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp import web

from .config import Settings
from .moderation import Moderation
from .net.http import HttpClient, Signer
from .publish import Publisher

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
HTTP = web.AppKey("http", HttpClient)
PUBLISHER = web.AppKey("publisher", Publisher)  # with the hooks the composition root registered
MEDIA_SLOTS = web.AppKey("media_slots", asyncio.Semaphore)  # images processed at once in this process
MODERATION = web.AppKey("moderation", Moderation)  # what the operator refuses (domains, actors)
INSTANCE_SIGNER = web.AppKey("instance_signer", Signer)  # the instance actor's key: signs server-to-server GETs
# Who is logged in to the site area on this request (`auth.viewer_middleware`); absent for visitors.
VIEWER = web.RequestKey("fedserver.viewer", object)
