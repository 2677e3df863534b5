"""Reading a multipart/form-data body part by part, each part under its own cap (never the whole body in memory
first): the media API's uploads and the dashboard's post and product forms."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from .errors import HTTPError

MAX_FIELD_BYTES = 16 * 1024

Files = dict[str, tuple[bytes, str | None]]


async def read_part(part: aiohttp.BodyPartReader, cap: int, what: str) -> bytes:
    """A part's bytes; 413 past `cap`."""
    chunks, size = [], 0
    while chunk := await part.read_chunk(64 * 1024):
        size += len(chunk)
        if size > cap:
            raise HTTPError(413, f"{what} is larger than {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(request: web.Request, *, text_fields: tuple[str, ...], file_fields: tuple[str, ...],
                    max_file_bytes: int, max_parts: int = 16) -> tuple[dict[str, str], Files]:
    """The named text fields and files of a multipart body (others are read and dropped), each capped.

    422 for more than `max_parts` parts or a nested multipart; 400 for a body that cannot be parsed.
    """
    texts: dict[str, str] = {}
    files: Files = {}
    try:
        reader = await request.multipart()
        for _ in range(max_parts + 1):
            part = await reader.next()
            if part is None:
                return texts, files
            if not isinstance(part, aiohttp.BodyPartReader):
                raise HTTPError(422, "nested multipart bodies are not accepted")
            name = part.name or ""
            if name in file_fields:
                files[name] = (await read_part(part, max_file_bytes, name), part.filename)
            else:
                data = await read_part(part, MAX_FIELD_BYTES, name or "a field")
                if name in text_fields:
                    texts[name] = data.decode("utf-8", errors="replace")
    except (ValueError, AssertionError, UnicodeDecodeError, aiohttp.ClientPayloadError) as exc:
        raise HTTPError(400, f"the multipart body cannot be read: {exc}") from None
    raise HTTPError(422, f"a form has at most {max_parts} fields")
