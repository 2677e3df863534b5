"""Uploading and describing media: what is accepted, processed in a thread, stored, then recorded.

Order of work: check the name, process the bytes (a thread, at most PROCESSING_SLOTS at
once per process), write the files, insert the row; if the insert fails the files go. A
refused upload writes nothing and inserts nothing.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import re
from dataclasses import dataclass

import asyncpg

from ..config import Settings
from ..datadir import DataDirError, failure_parts, not_writable
from ..repo import media as media_repo
from . import storage
from .entity import MAX_DESCRIPTION, StoredMedia
from .images import ImageLimits, ImageRejected, ProcessedImage, process_upload

PROCESSING_SLOTS = 2
MAX_FILENAME = 255
MEDIA_PATH = "/media"
# Names that announce a document or script, not an image: a polyglot's disguise.
_REFUSED_EXTENSIONS = frozenset({
    "html", "htm", "xhtml", "shtml", "svg", "svgz", "xml", "xsl", "json", "jsonld", "js", "mjs", "css",
    "php", "phtml", "asp", "aspx", "jsp", "cgi", "pl", "py", "rb", "sh", "exe", "swf", "pdf",
})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


log = logging.getLogger("fedserver.media")


class MediaRefused(Exception):
    """An upload or change refused; `status` is 413 or 422."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Upload:
    """What a client sent: the file's bytes and name, an optional thumbnail, description and focus."""

    data: bytes
    filename: str | None
    thumbnail: bytes | None = None
    thumbnail_filename: str | None = None
    description: str | None = None
    focus: tuple[float, float] | None = None


def check_filename(name: str | None) -> None:
    """Refuse names with a path, control characters, or an extension of a document or script."""
    if not name:
        return
    if len(name) > MAX_FILENAME or _CONTROL.search(name):
        raise MediaRefused(422, "the file name is too long or contains control characters")
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith(".."):
        raise MediaRefused(422, "the file name must not contain a path")
    extension = name.rsplit(".", 1)[1].lower() if "." in name else ""
    if extension in _REFUSED_EXTENSIONS:
        raise MediaRefused(422, f"a .{extension} file is not an image")


def parse_focus(raw: str | None) -> tuple[float, float] | None:
    """Mastodon's focal point `"x,y"`, each between -1.0 and 1.0; None when absent."""
    if raw is None or raw.strip() == "":
        return None
    parts = raw.split(",")
    try:
        x, y = (float(p) for p in parts) if len(parts) == 2 else (math.nan, math.nan)
    except ValueError:
        x = y = math.nan
    if not (-1.0 <= x <= 1.0 and -1.0 <= y <= 1.0):
        raise MediaRefused(422, "focus must be two numbers between -1.0 and 1.0, as \"x,y\"")
    return x, y


def check_description(description: str | None) -> str | None:
    """The description, or None when empty; 422 when too long."""
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise MediaRefused(422, f"description is too long (maximum is {MAX_DESCRIPTION} characters)")
    return description if description and description.strip() else None


def limits_of(settings: Settings) -> ImageLimits:
    """The configured upload limits."""
    return ImageLimits(max_bytes=settings.media.max_image_bytes, max_pixels=settings.media.max_image_pixels)


async def upload_media(pool: asyncpg.Pool, settings: Settings, slots: asyncio.Semaphore, account_id: int,
                       upload: Upload) -> StoredMedia:
    """Check, process and store an upload for `account_id`; raises MediaRefused."""
    check_filename(upload.filename)
    check_filename(upload.thumbnail_filename)
    description = check_description(upload.description)
    async with slots:
        try:
            processed = await asyncio.to_thread(process_upload, upload.data, limits_of(settings), upload.thumbnail)
        except ImageRejected as exc:
            raise MediaRefused(exc.status, exc.message) from None
    return await _store(pool, settings, account_id, processed, description, upload.focus or (0.0, 0.0))


async def _store(pool: asyncpg.Pool, settings: Settings, account_id: int, processed: ProcessedImage,
                 description: str | None, focus: tuple[float, float]) -> StoredMedia:
    directory = storage.media_dir(settings.storage.data_dir)
    original, small = processed.original, processed.small
    names = (storage.new_name(original.extension), storage.new_name(small.extension))
    try:
        await asyncio.to_thread(storage.write_files, directory, {names[0]: original.data, names[1]: small.data})
    except OSError as exc:  # write_files left nothing behind
        if not_writable(exc):  # the volume went read-only or changed owner: one line that says what to do
            raise DataDirError(*failure_parts(settings.storage.data_dir, exc)) from None
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        log.error("media upload refused: the disk of %s is full", directory)
        raise MediaRefused(507, "the server has no space left to store this file; try again later") from None
    base = f"{settings.base_url}{MEDIA_PATH}"
    try:
        async with pool.acquire() as conn:
            return await media_repo.insert_media(
                conn, account_id=account_id, media_type=original.media_type, file_name=names[0],
                preview_file_name=names[1], url=f"{base}/{names[0]}", preview_url=f"{base}/{names[1]}",
                file_size=len(original.data), width=original.width, height=original.height,
                preview_width=small.width, preview_height=small.height, description=description, focus=focus,
                blurhash=processed.blurhash)
    except BaseException:
        await asyncio.to_thread(storage.remove_files, directory, list(names))
        raise


async def get_media(pool: asyncpg.Pool, account_id: int, media_id: int) -> StoredMedia | None:
    """One's own upload that no status has taken yet (Mastodon hides attached ones here)."""
    async with pool.acquire() as conn:
        return await media_repo.get_own_unattached_media(conn, account_id, media_id)


async def describe_media(pool: asyncpg.Pool, account_id: int, media_id: int, *, description: str | None,
                         set_description: bool, focus: tuple[float, float] | None) -> StoredMedia | None:
    """Change the description and/or focus of one's own unattached upload; None when there is none."""
    description = check_description(description) if set_description else None
    async with pool.acquire() as conn:
        return await media_repo.update_media(conn, account_id, media_id, description=description,
                                             set_description=set_description, focus=focus)
