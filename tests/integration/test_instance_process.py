"""The `fedserver` command and server as real processes: errors, restarts, crashes, embedded database."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import asyncpg
import pytest

from tests.support.database import with_database
from tests.support.instance import Instance, fedserver, free_port, instance_env

pytestmark = pytest.mark.slow


def _get(url: str, accept: str = "application/activity+json") -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _webfinger(instance: Instance, name: str) -> tuple[int, dict]:
    domain = f"127.0.0.1:{instance.port}"
    return _get(f"{instance.base_url}/.well-known/webfinger?resource=acct:{name}@{domain}", "application/jrd+json")


def _account_names(instance: Instance) -> list[str]:
    result = instance.command("account", "list", "--json", "--all")
    assert result.returncode == 0, result.stderr
    return [a["name"] for a in json.loads(result.stdout)]


@pytest.fixture
def instance(db_url, tmp_path) -> Instance:
    port = free_port()
    env = instance_env(database_url=db_url, data_dir=tmp_path / "data", port=port)
    inst = Instance(port=port, env=env, cwd=tmp_path, log_path=tmp_path / "server.log")
    yield inst
    inst.kill()


@pytest.fixture
def embedded_instance(tmp_path) -> Instance:
    """An instance with no database configured: it runs its own PostgreSQL in its data directory."""
    port = free_port()
    env = instance_env(database_url="", data_dir=tmp_path / "data", port=port)
    inst = Instance(port=port, env=env, cwd=tmp_path, log_path=tmp_path / "server.log")
    yield inst
    inst.kill()
    # Leave no PostgreSQL behind even when a test failed half-way.
    pid_file = tmp_path / "data" / "postgres" / "postmaster.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)
        except (ProcessLookupError, ValueError):
            pass


def test_wrong_config_value_gives_one_message_naming_the_key(instance):
    env = {**instance.env, "FEDSERVER_SERVER__PORT": "eighty"}
    result = fedserver("migrate", env=env)
    assert result.returncode == 1
    assert "[server] port (FEDSERVER_SERVER__PORT)" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_config_file_is_a_clear_error(instance, tmp_path):
    result = fedserver("--config", str(tmp_path / "missing.toml"), "migrate", env=instance.env)
    assert result.returncode == 1 and "does not exist" in result.stderr


def test_unreachable_database_gives_one_clear_message(instance, db_url):
    port = free_port()  # nothing listens there
    env = {**instance.env, "FEDSERVER_DATABASE__URL": f"postgresql://fed:secret@127.0.0.1:{port}/fed",
           "FEDSERVER_DATABASE__CONNECT_DEADLINE": "1.5"}
    for args in (("migrate",), ("account", "create", "alice"), ("run",)):
        started = time.monotonic()
        result = fedserver(*args, env=env, timeout=60)
        assert result.returncode == 1, args
        assert "cannot connect to the database at postgresql://fed:***@127.0.0.1" in result.stderr
        assert "secret" not in result.stderr and "Traceback" not in result.stderr
        # A database that refuses may be starting: tried again with back-off, a line each, until the deadline.
        assert result.stderr.count("does not answer yet") >= 2, result.stderr
        assert "tried 3 times" in result.stderr or "tried 4 times" in result.stderr, result.stderr
        assert time.monotonic() - started < 30
    # A database that answers "no such database" is not waited for: waiting cannot fix it.
    wrong = {**instance.env, "FEDSERVER_DATABASE__URL": with_database(db_url, "no_such_database_here")}
    result = fedserver("migrate", env=wrong, timeout=60)
    assert result.returncode == 1
    assert "cannot connect to the database" in result.stderr and "does not answer yet" not in result.stderr


def test_account_commands_refuse_bad_input_and_create_nothing(instance):
    created = instance.command("account", "create", "alice", "--display-name", "앨리스")
    assert created.returncode == 0, created.stderr
    assert f"created @alice@127.0.0.1:{instance.port}" in created.stdout

    duplicate = instance.command("account", "create", "Alice")
    assert duplicate.returncode == 1
    assert "already taken" in duplicate.stderr and "Traceback" not in duplicate.stderr

    invalid = instance.command("account", "create", "no spaces")
    assert invalid.returncode == 1
    assert "invalid account" in invalid.stderr

    no_password = instance.command("account", "create", "carol", "--password-stdin", stdin="")
    assert no_password.returncode == 1 and "no password" in no_password.stderr

    assert _account_names(instance) == ["alice"]

    with_password = instance.command("account", "create", "dora", "--password-stdin", stdin="a good password\n")
    assert with_password.returncode == 0, with_password.stderr
    assert _account_names(instance) == ["alice", "dora"]

    deleted = instance.command("account", "delete", "dora", "--yes")
    assert deleted.returncode == 0 and "deleted @dora" in deleted.stdout
    listed = json.loads(instance.command("account", "list", "--json").stdout)
    assert [a["name"] for a in listed] == ["alice"]


def test_account_commands_make_and_unmake_administrators(instance):
    created = instance.command("account", "create", "mira", "--admin", "--password-stdin", stdin="a good password\n")
    assert created.returncode == 0, created.stderr
    assert "created @mira" in created.stdout and "(administrator)" in created.stdout
    assert instance.command("account", "create", "bob").returncode == 0
    roles = {a["name"]: a["role"] for a in json.loads(instance.command("account", "list", "--json").stdout)}
    assert roles == {"mira": "admin", "bob": "user"}

    promoted = instance.command("account", "role", "bob", "admin")
    assert promoted.returncode == 0 and "@bob@" in promoted.stdout and "now an administrator" in promoted.stdout
    demoted = instance.command("account", "role", "mira", "user")
    assert demoted.returncode == 0 and "now a regular user" in demoted.stdout
    listing = instance.command("account", "list").stdout
    assert [line.split()[0] for line in listing.splitlines() if "(administrator)" in line] == ["bob"]

    unknown = instance.command("account", "role", "nobody", "admin")
    assert unknown.returncode == 1 and "no account named 'nobody'" in unknown.stderr
    bad_role = instance.command("account", "role", "bob", "instance")
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr


async def _raise_alerts(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("""INSERT INTO rewards_alerts (origin, kind, message, resolved_at)
                              VALUES ('a.test/rewards/v1', 'fork', 'log forked: two checkpoints of size 4', now()),
                                     ('b.test/rewards/v1', 'rewrite', 'log rewritten: size 9', NULL)""")
    finally:
        await conn.close()


def test_rewards_alerts_lists_what_monitoring_raised(instance):
    empty = instance.command("rewards", "alerts")
    assert empty.returncode == 0 and empty.stdout.strip() == "no unresolved alerts"
    asyncio.run(_raise_alerts(instance.env["FEDSERVER_DATABASE__URL"]))
    listed = instance.command("rewards", "alerts")
    assert listed.returncode == 0 and "/admin/rewards/alerts" in listed.stderr
    [line] = listed.stdout.splitlines()
    assert "b.test/rewards/v1  rewrite  [unresolved, seen 1x]  log rewritten: size 9" in line
    every = json.loads(instance.command("rewards", "alerts", "--all", "--json").stdout)
    assert [(a["origin"], a["kind"], a["resolved_at"] is None) for a in every] == [
        ("b.test/rewards/v1", "rewrite", True), ("a.test/rewards/v1", "fork", False)]


def test_sigterm_stops_cleanly_and_a_restart_keeps_every_account(instance):
    for name in ("alice", "bob"):
        assert instance.command("account", "create", name).returncode == 0
    instance.start()
    assert _webfinger(instance, "alice")[0] == 200
    assert instance.terminate() == 0
    assert "stopped" in instance.log()
    instance.start()
    for name in ("alice", "bob"):
        status, jrd = _webfinger(instance, name)
        assert status == 200
        assert jrd["links"][-1]["href"] == f"{instance.base_url}/users/{name}"
    assert instance.terminate() == 0


def test_a_port_already_in_use_gives_one_line_and_exit_1(instance):
    """`fedserver run` on a port another program listens on: one clear line, status 1, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", instance.port))
        taken.listen()
        result = fedserver("run", env=instance.env, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("fedserver: error:")]
    assert errors == [(f"fedserver: error: cannot listen on 127.0.0.1:{instance.port}: the port is already in use"
                       " (another fedserver, or another program, listens there); stop the other program or set"
                       " another [server] port (FEDSERVER_SERVER__PORT)")], result.stderr
    # It stopped what it had started: a second try, with the port free, starts and serves.
    instance.start()
    assert _get(f"{instance.base_url}/healthz")[0] == 200
    assert instance.terminate() == 0


def test_a_request_whose_headers_trickle_in_is_cut_off_and_others_are_served(instance):
    instance.env["FEDSERVER_SERVER__IDLE_TIMEOUT"] = "2"
    instance.start()
    slow = [socket.create_connection(("127.0.0.1", instance.port)) for _ in range(20)]
    started = time.monotonic()
    try:
        for conn in slow:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            conn.setblocking(False)
        open_ones = list(slow)
        while open_ones and time.monotonic() - started < 30:  # a header line now and then (slow loris)
            for conn in list(open_ones):
                try:
                    conn.send(b"X-Slow: 1\r\n")
                    answer = conn.recv(100)
                except BlockingIOError:
                    continue  # nothing to read: still open
                except (ConnectionResetError, BrokenPipeError):
                    answer = b""
                assert answer == b"", answer  # never a response: the headers never ended
                open_ones.remove(conn)
            assert _get(f"{instance.base_url}/healthz", "application/json")[0] == 200  # others are served
            time.sleep(0.5)
        assert open_ones == [], f"{len(open_ones)} connections still open after 30 s"
    finally:
        for conn in slow:
            conn.close()
    assert instance.terminate() == 0


def test_embedded_database_smoke_webfinger_and_actor(embedded_instance):
    """`fedserver run` with no database configured answers WebFinger and serves the actor."""
    inst = embedded_instance
    inst.start()
    created = inst.command("account", "create", "alice")  # beside the running server, sharing its database
    assert created.returncode == 0, created.stderr
    status, jrd = _webfinger(inst, "alice")
    assert status == 200
    actor_url = next(link["href"] for link in jrd["links"] if link["rel"] == "self")
    status, actor = _get(actor_url)
    assert status == 200 and actor["id"] == actor_url
    assert actor["publicKey"]["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")
    # The command above must not have stopped the database under the running server.
    assert _get(f"{inst.base_url}/healthz")[0] == 200
    assert inst.terminate() == 0
    assert not (Path(inst.env["FEDSERVER_STORAGE__DATA_DIR"]) / "postgres" / "postmaster.pid").exists()


def test_kill_9_then_restart_recovers_the_embedded_database(embedded_instance):
    inst = embedded_instance
    assert inst.command("account", "create", "alice").returncode == 0
    inst.start()
    inst.kill()  # the server dies; its PostgreSQL keeps running and is adopted by the next start
    inst.start()
    assert _webfinger(inst, "alice")[0] == 200
    assert inst.command("account", "create", "bob").returncode == 0

    # Now a crash of everything: the server and its PostgreSQL both die without a shutdown.
    pgdata = Path(inst.env["FEDSERVER_STORAGE__DATA_DIR"]) / "postgres"
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    inst.kill()
    os.kill(postmaster, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(postmaster, 0)
            time.sleep(0.1)
        except ProcessLookupError:
            break
    inst.start()  # stale postmaster.pid: PostgreSQL runs crash recovery
    for name in ("alice", "bob"):
        assert _webfinger(inst, name)[0] == 200
    assert inst.terminate() == 0
    assert not (pgdata / "postmaster.pid").exists()


def test_stale_lock_files_naming_a_live_process_do_not_stop_the_next_start(embedded_instance):
    """In a new container the dead postmaster's process id often belongs to a live process (the shell, a
    thread of fedserver); PostgreSQL then refused to start on its socket lock file ("lock file
    .s.PGSQL.5432.lock already exists"), and fedserver exited (check-image's kill -9 rounds, 2 runs of 5)."""
    inst = embedded_instance
    inst.start()
    assert inst.command("account", "create", "alice").returncode == 0
    pgdata = Path(inst.env["FEDSERVER_STORAGE__DATA_DIR"]) / "postgres"
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    import psutil

    postgres_uid = psutil.Process(postmaster).uids().real  # as root, pgserver runs PostgreSQL as its own user
    inst.kill()
    os.kill(postmaster, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _postmasters(pgdata.resolve()) and time.monotonic() < deadline:
        time.sleep(0.05)
    socket_locks = list(pgdata.glob(".s.PGSQL.*.lock"))
    assert socket_locks, "the killed postmaster left its socket lock file"
    # Alive, no PostgreSQL, and PostgreSQL's user may signal it (one it may not is taken for dead).
    bystander = subprocess.Popen(["sleep", "120"], user=postgres_uid if os.geteuid() == 0 else None)
    try:
        for lock_file in (pgdata / "postmaster.pid", *socket_locks):
            lines = lock_file.read_text().split("\n")
            lock_file.write_text("\n".join([str(bystander.pid), *lines[1:]]))
        inst.start()
        assert _webfinger(inst, "alice")[0] == 200
        assert inst.terminate() == 0
    finally:
        bystander.kill()
        bystander.wait()


def _postmasters(pgdata: Path) -> list[int]:
    """Process ids of PostgreSQL postmasters serving `pgdata`, in every PID namespace this one can see.

    Only a postmaster keeps its full command line; its children rename themselves ("postgres: checkpointer").
    """
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if cmdline and cmdline[0].endswith("/postgres") and "-D" in cmdline and str(pgdata) in cmdline:
            found.append(process.pid)
    return found


@pytest.mark.skipif(os.geteuid() != 0, reason="unshare --pid needs root (CI runs as root)")
def test_a_process_that_cannot_see_the_running_database_is_refused_and_never_starts_a_second_one(
        embedded_instance):
    """A second container on the same volume (its own PID namespace, as `unshare --pid` makes) must not start a
    second PostgreSQL on the live data directory: that lost the account it made (hardening of self-hosting)."""
    inst = embedded_instance
    inst.start()
    pgdata = (Path(inst.env["FEDSERVER_STORAGE__DATA_DIR"]) / "postgres").resolve()
    assert inst.command("account", "create", "alice").returncode == 0  # beside `run`, in sight: it is used
    assert len(_postmasters(pgdata)) == 1

    elsewhere = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-m", "fedserver", "account", "create",
         "carol"], env=inst.env, cwd=inst.cwd, capture_output=True, text=True, timeout=120, check=False)
    assert elsewhere.returncode == 1, elsewhere.stdout + elsewhere.stderr
    assert "docker compose exec web fedserver" in elsewhere.stderr
    assert "Traceback" not in elsewhere.stderr
    assert len(_postmasters(pgdata)) == 1

    assert inst.terminate() == 0
    inst.start()
    assert _webfinger(inst, "alice")[0] == 200
    assert _webfinger(inst, "carol")[0] == 404
    assert "shared memory block" not in (pgdata / "log").read_text(errors="replace")


@pytest.mark.skipif(os.geteuid() != 0, reason="unshare --pid needs root (CI runs as root)")
def test_ten_kill_9_of_a_container_right_after_start_each_recover_at_the_next_start(embedded_instance):
    """As in a container: each start in a PID namespace of its own, so the new postmaster gets the process id
    written in the stale postmaster.pid, and `pg_ctl -w` returns before crash recovery ends; killing the
    namespace's first process kills everything in it, as `docker kill` does. The pool waits for recovery."""
    inst = embedded_instance
    assert inst.command("account", "create", "alice").returncode == 0
    inst.launcher = ("unshare", "--pid", "--fork", "--kill-child", "--mount-proc")
    pgdata = (Path(inst.env["FEDSERVER_STORAGE__DATA_DIR"]) / "postgres").resolve()
    for _ in range(10):
        inst.start()
        inst.kill()  # unshare dies; --kill-child takes fedserver, and with it the whole namespace
        deadline = time.monotonic() + 10
        while _postmasters(pgdata) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _postmasters(pgdata)
    inst.launcher = ()  # unshare does not pass SIGTERM on: the last start is a plain one, stopped cleanly
    inst.start()
    assert _webfinger(inst, "alice")[0] == 200
    assert inst.terminate() == 0
