"""`fedserver backup` and `fedserver restore` on real instances: everything comes back byte for byte.

A maker's instance A is filled through its command line and a second instance B (accounts, posts,
an uploaded image, a follow, an order, likes and replies that issue reward receipts into the
witnessed log), backed up while it runs and again once stopped, wiped (a new empty database and
an empty data directory), restored and started again. Every table's rows, every media file and
the policy file are identical; the keys are the same, so B still takes A's new signed post with
the key it fetched before the backup, and `rewards verify` passes on both sides. The embedded
database takes the same round trip, and a full disk during a backup leaves no file behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import asyncpg
import pytest
from PIL import Image

from tests.support.instance import Instance, fetchval, free_port, instance_env, running_instances

pytestmark = pytest.mark.slow

FAST = {"FEDSERVER_FEDERATION__RETRY_DELAY_SCALE": "0.001", "FEDSERVER_REWARDS__CHECKPOINT_INTERVAL": "0.3",
        "FEDSERVER_REWARDS__MONITOR_INTERVAL": "1",
        "FEDSERVER_LOGGING__LEVEL": "warning"}


async def _run(x: Instance, *args: str) -> str:
    result = await asyncio.to_thread(x.command, *args)
    assert result.returncode == 0, f"fedserver {' '.join(args)}: {result.stderr}\n{x.log()}"
    return result.stdout.strip().splitlines()[-1]


async def _until(what: str, check, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def _verified(x: Instance, log_of: Instance, timeout: float = 30) -> str:
    """`rewards verify` of `log_of`'s log run on `x`, once its checkpoint is cosigned (checkpoints every 0.3 s)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await asyncio.to_thread(x.command, "rewards", "verify", log_of.base_url)
        if result.returncode == 0 or time.monotonic() > deadline:
            assert result.returncode == 0, result.stderr
            return result.stdout
        await asyncio.sleep(0.3)


def _image(path: Path, size: int = 64) -> Path:
    Image.frombytes("RGB", (size, size), os.urandom(size * size * 3)).save(path, "PNG")
    return path


async def _table_digests(url: str) -> dict[str, tuple[int, str]]:
    """Rows and an MD5 over every row's text, in a fixed order, for each table of the public schema."""
    conn = await asyncpg.connect(url)
    try:
        tables = [r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
        out = {}
        for table in tables:
            row = await conn.fetchrow(
                f"SELECT count(*) AS n, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) AS h "
                f"FROM {table} t")
            out[table] = (row["n"], row["h"])
        return out
    finally:
        await conn.close()


def _files(directory: Path) -> dict[str, str]:
    if not directory.is_dir():
        return {}
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir()) if p.is_file()}


async def test_backup_wipe_restore_brings_back_everything_and_peers_still_verify(pg_cluster, tmp_path):
    async with running_instances(pg_cluster, tmp_path, "ab", FAST) as (a, b):
        for x, y in ((a, b), (b, a)):
            await _run(x, "rewards", "peer", "add", y.base_url)
        await _run(a, "account", "create", "pottery", "--display-name", "도자기 공방")
        await _run(a, "account", "seller", "pottery", "--business-name", "도자기 공방", "--address", "서울시 종로구 1",
                   "--phone", "02-123-4567")
        await _run(b, "account", "create", "buyer")
        await _run(b, "follow", "buyer", f"{a.base_url}/users/pottery")
        await _until("the follow", lambda: fetchval(b, "SELECT state = 'accepted' FROM follows"))
        post = await _run(a, "post", "pottery", "가마에서 막 나온 찻잔")
        listing = await _run(a, "product", "create", "pottery", "--title", "청자 찻잔", "--price", "38000",
                             "--stock", "3", "--image", str(_image(tmp_path / "cup.png")))
        await _until("the listing on B", lambda: fetchval(b, "SELECT count(*) = 1 FROM listings"))
        order = await _run(b, "order", "create", "buyer", listing, "--quantity", "1", "--message", "선물용")
        await _until("the order on A", lambda: fetchval(a, "SELECT count(*) = 1 FROM orders"))
        await _run(b, "like", "buyer", post)
        await _run(b, "post", "buyer", "예뻐요", "--reply-to", post)
        await _until("receipts in A's log", lambda: fetchval(a, "SELECT count(*) >= 2 FROM rewards_log_entries"))
        await _verified(b, a)

        # A backup while the server runs works (a consistent snapshot), and one with the server stopped
        # is compared row by row with the restore.
        await _run(a, "backup", str(tmp_path / "live.tar"))
        assert a.terminate() == 0
        before = await _table_digests(a.env["FEDSERVER_DATABASE__URL"])
        data_dir = Path(a.env["FEDSERVER_STORAGE__DATA_DIR"])
        media_before = _files(data_dir / "media")
        policy_before = (data_dir / "rewards-policy.txt").read_bytes()
        assert len(media_before) >= 1 and before["orders"][0] == 1 and before["rewards_receipts"][0] >= 2
        summary = json.loads(await asyncio.to_thread(
            lambda: a.command("backup", str(tmp_path / "stopped.tar"), "--json").stdout))
        assert summary["media_files"] == len(media_before) and summary["counts"]["orders"] == 1
        assert oct((tmp_path / "stopped.tar").stat().st_mode & 0o777) == "0o600"  # it holds every private key

        # Wipe: a new, empty database and no data directory.
        old_url = a.env["FEDSERVER_DATABASE__URL"]
        a.env["FEDSERVER_DATABASE__URL"] = await pg_cluster.create_empty_database()
        await pg_cluster.drop_database(old_url)
        shutil.rmtree(data_dir)
        restored = await asyncio.to_thread(a.command, "restore", str(tmp_path / "stopped.tar"))
        assert restored.returncode == 0, restored.stderr
        assert f"{len(media_before)} media files" in restored.stdout

        assert await _table_digests(a.env["FEDSERVER_DATABASE__URL"]) == before
        assert _files(data_dir / "media") == media_before
        assert (data_dir / "rewards-policy.txt").read_bytes() == policy_before
        again = await asyncio.to_thread(a.command, "restore", str(tmp_path / "stopped.tar"))
        assert again.returncode == 1 and "not empty" in again.stderr and "Traceback" not in again.stderr

        await asyncio.to_thread(a.start)
        # The same keys: B takes a new post signed by A with the key it fetched before the backup.
        fresh = await _run(a, "post", "pottery", "복원 후 첫 글")
        await _until("the new post on B", lambda: fetchval(b, "SELECT count(*) = 1 FROM objects WHERE uri = $1", fresh))
        assert await fetchval(b, "SELECT count(*) FROM actors WHERE uri = $1", f"{a.base_url}/users/pottery") == 1
        assert await fetchval(a, "SELECT uri FROM orders") == order
        for x in (a, b):
            assert "both signatures verified" in await _verified(x, a)


async def test_the_embedded_database_backs_up_while_running_and_restores_into_a_new_data_directory(tmp_path):
    port = free_port()
    env = instance_env(database_url="", data_dir=tmp_path / "data", port=port,
                       extra={"FEDSERVER_LOGGING__LEVEL": "warning"})
    x = Instance(port=port, env=env, cwd=tmp_path, log_path=tmp_path / "server.log")
    try:
        x.start()
        await _run(x, "account", "create", "pottery")
        await _run(x, "product", "create", "pottery", "--title", "막사발", "--price", "20000",
                   "--image", str(_image(tmp_path / "bowl.png")))
        key = await _key_of(x)
        backed = await asyncio.to_thread(x.command, "backup", str(tmp_path / "b.tar"))
        assert backed.returncode == 0, backed.stderr
        assert "pginstall" in backed.stdout  # the embedded PostgreSQL's own pg_dump
        assert x.terminate() == 0
        media = _files(tmp_path / "data" / "media")
        shutil.rmtree(tmp_path / "data")
        restored = await asyncio.to_thread(x.command, "restore", str(tmp_path / "b.tar"))
        assert restored.returncode == 0, restored.stderr
        x.start()
        assert await _key_of(x) == key
        assert _files(tmp_path / "data" / "media") == media and media
        name = next(iter(media))
        served = await asyncio.to_thread(lambda: urllib.request.urlopen(f"{x.base_url}/media/{name}").read())
        assert hashlib.sha256(served).hexdigest() == media[name]
        assert x.terminate() == 0
    finally:
        x.kill()
        pid_file = tmp_path / "data" / "postgres" / "postmaster.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)


async def _key_of(x: Instance) -> str:
    request = urllib.request.Request(f"{x.base_url}/users/pottery", headers={"Accept": "application/activity+json"})
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(request).read())
    return json.loads(body)["publicKey"]["publicKeyPem"]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root (CI runs as root)")
async def test_a_full_disk_during_a_backup_is_one_clear_error_and_leaves_no_file(pg_cluster, tmp_path):
    async with running_instances(pg_cluster, tmp_path, "a", FAST) as (a,):
        await _run(a, "account", "create", "pottery")
        for n in range(3):  # about 3 x 190 KB of images that do not compress: more than the 256 KB disk
            await _run(a, "product", "create", "pottery", "--title", f"찻잔 {n}", "--price", "10000",
                       "--image", str(_image(tmp_path / f"cup{n}.png", 256)))
        small = tmp_path / "small"
        small.mkdir()
        await asyncio.to_thread(subprocess.run, ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)],
                                check=True)
        try:
            result = await asyncio.to_thread(a.command, "backup", str(small / "b.tar"))
            assert result.returncode == 1, result.stdout
            assert result.stderr.startswith("fedserver: error: no space left on the device for")
            assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
            assert os.listdir(small) == []  # neither the archive nor a temporary file is left
            # The server kept serving meanwhile, and a backup where there is room works.
            post = await _run(a, "post", "pottery", "디스크가 가득 찬 뒤에도")
            assert post.startswith(a.base_url)
            await _run(a, "backup", str(tmp_path / "roomy.tar"))
        finally:
            await asyncio.to_thread(subprocess.run, ["umount", str(small)], check=False)
