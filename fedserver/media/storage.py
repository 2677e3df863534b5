"""Media files on disk: `[storage] data_dir/media/<32 hex digits>.<ext>`, names chosen here, never by a client.

Checklist 39: a name is 128 random bits and an extension from the sniffed type, so no
client input ever reaches a path. Files are written to a temporary name beside the target,
synced, then renamed, so a reader never sees half a file. Synchronous: call in a thread.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from .entity import MEDIA_TYPES

MEDIA_DIR = "media"
NAME_PATTERN = r"[0-9a-f]{32}\.(?:jpg|png|gif|webp)"
_NAME = re.compile(NAME_PATTERN)


def media_dir(data_dir: Path) -> Path:
    """Where uploaded files live."""
    return data_dir / MEDIA_DIR


def new_name(extension: str) -> str:
    """A fresh random file name with an extension we produced."""
    if extension not in MEDIA_TYPES:
        raise ValueError(f"unknown media extension {extension!r}")
    return f"{secrets.token_hex(16)}.{extension}"


def path_for(directory: Path, name: str) -> Path | None:
    """The file for a stored name, or None when `name` is not one of ours (it never leaves `directory`)."""
    return directory / name if _NAME.fullmatch(name) else None


def media_type_of(name: str) -> str:
    """The Content-Type of a stored file, from the extension we gave it."""
    return MEDIA_TYPES[name.rsplit(".", 1)[1]]


def write_files(directory: Path, files: dict[str, bytes]) -> None:
    """Write each `name: bytes` atomically; on any failure remove what was written and re-raise."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    try:
        for name, data in files.items():
            _write_one(directory, name, data)
            written.append(name)
    except BaseException:
        remove_files(directory, written)
        raise


def _write_one(directory: Path, name: str, data: bytes) -> None:
    target = path_for(directory, name)
    if target is None:
        raise ValueError(f"not a media file name: {name!r}")
    temporary = directory / f".{name}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def remove_files(directory: Path, names: list[str]) -> None:
    """Delete stored files (missing ones are fine)."""
    for name in names:
        path = path_for(directory, name)
        if path is not None:
            path.unlink(missing_ok=True)
