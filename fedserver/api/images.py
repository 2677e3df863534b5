"""The default avatar and header images: Tusky and Toot! need real, non-empty image URLs (Tusky#1559)."""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache

from aiohttp import web

from .entities import DEFAULT_AVATAR_PATH, DEFAULT_HEADER_PATH

_AVATAR_SIZE = (120, 120)
_HEADER_SIZE = (700, 335)
_COLOUR = (0xD9, 0xE1, 0xE8)  # Mastodon's placeholder grey-blue


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@lru_cache(maxsize=4)
def solid_png(width: int, height: int, rgb: tuple[int, int, int] = _COLOUR) -> bytes:
    """A PNG of one colour (8-bit RGB, no interlace)."""
    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(row * height, 9))
            + _chunk(b"IEND", b""))


def _png(size: tuple[int, int]):
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=solid_png(*size), content_type="image/png",
                            headers={"Cache-Control": "public, max-age=604800", "Access-Control-Allow-Origin": "*"})
    return handler


def setup_routes(app: web.Application) -> None:
    """Serve the two placeholders at Mastodon's paths."""
    app.router.add_get(DEFAULT_AVATAR_PATH, _png(_AVATAR_SIZE))
    app.router.add_get(DEFAULT_HEADER_PATH, _png(_HEADER_SIZE))
