"""The data directory (`[storage] data_dir`): that it can be written, how much room is left, and one-line errors.

It holds the embedded database, media files, and the rewards policy file. A directory that cannot be
written (a read-only volume, a root-owned bind mount, a path below a regular file) is reported in one
line that names the key and says how to fix it, instead of a traceback from whichever write came first.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from .config import ConfigError

PROBE_PREFIX = ".fedserver-write-probe-"


class DataDirError(ConfigError):
    """The data directory cannot be created or written; `parts` is (what is wrong, how to fix it)."""

    def __init__(self, problem: str, fix: str):
        super().__init__(f"{problem}: {fix}")
        self.parts = (problem, fix)


def failure_parts(data_dir: Path, exc: OSError) -> tuple[str, str]:
    """Which directory and what went wrong; and the fix, in plain words."""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EROFS:
        fix = "it is on a read-only file system: mount a writable volume there"
    elif exc.errno in (errno.ENOTDIR, errno.EEXIST) or (data_dir.exists() and not data_dir.is_dir()):
        fix = f"{_first_file_on(data_dir) or data_dir} is a file, not a directory: move it away"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        uid = os.geteuid()
        fix = f"give it to the user fedserver runs as (uid {uid}), for example `chown -R {uid} {data_dir}`"
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "the disk is full: free some space"
    else:
        fix = "check the path"
    return (f"the data directory {data_dir} is not writable ({reason})",
            f"{fix}, or set [storage] data_dir (FEDSERVER_STORAGE__DATA_DIR) to a writable directory")


def describe_failure(data_dir: Path, exc: OSError) -> str:
    """One line: which directory, what went wrong, and the fix."""
    return ": ".join(failure_parts(data_dir, exc))


def _first_file_on(path: Path) -> Path | None:
    """The first path component, from the root down, that exists and is not a directory."""
    for candidate in (*reversed(path.parents), path):
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return None


def probe_writable(data_dir: Path) -> None:
    """Create the directory if needed, then write, sync and delete a small file in it; raise DataDirError.

    The file's name is this probe's own (mkstemp): processes that start together on one directory
    (`run --role web` beside `run --role worker`) must not delete each other's probe."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=data_dir)
        try:
            os.write(fd, b"fedserver\n")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise DataDirError(*failure_parts(data_dir, exc)) from None


def not_writable(exc: OSError) -> bool:
    """Whether an OSError from writing a file means the directory cannot take writes at all."""
    return exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR)


def free_bytes(data_dir: Path) -> int:
    """Bytes free for this user on the data directory's file system."""
    return shutil.disk_usage(data_dir).free
