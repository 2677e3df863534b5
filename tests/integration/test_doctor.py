"""`fedserver doctor` as a real process: everything ok beside a running instance, and each broken part named.

One instance runs for the module (external database); every broken configuration is that good one with one
thing changed, so exactly the check that should fail fails. An embedded-database instance is tested apart:
the doctor uses the running server's PostgreSQL and leaves it running, and starts and stops one that is not.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.instance import Instance, fedserver, free_port, instance_env, named_instance

pytestmark = pytest.mark.slow

NAMES = ["config", "data_dir", "database", "migrations", "webfinger", "clock"]


@pytest.fixture(scope="module")
def running(pg_cluster, tmp_path_factory):
    """A started instance on its own database, shared by the tests of this module."""
    url = asyncio.run(pg_cluster.create_database())
    instance = named_instance(url, tmp_path_factory.mktemp("doctor"), "good")
    instance.start()
    yield instance
    instance.kill()
    asyncio.run(pg_cluster.drop_database(url))


def doctor(env: dict, *args: str) -> tuple[subprocess.CompletedProcess, dict[str, dict]]:
    """Run `fedserver doctor --json` and also the text form; return the text run and the checks by name."""
    as_json = fedserver("doctor", "--json", *args, env=env, timeout=60)
    parsed = json.loads(as_json.stdout)
    assert [c["name"] for c in parsed["checks"]] == NAMES
    assert parsed["ok"] == (as_json.returncode == 0)
    text = fedserver("doctor", *args, env=env, timeout=60)
    assert text.returncode == as_json.returncode
    lines = text.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:-1]] == [[c["status"], c["name"]] for c in parsed["checks"]]
    return text, {c["name"]: c for c in parsed["checks"]}


def statuses(checks: dict[str, dict]) -> dict[str, str]:
    return {name: check["status"] for name, check in checks.items()}


def test_doctor_finds_every_check_ok_beside_a_running_instance(running):
    started = time.monotonic()
    text, checks = doctor(running.env)
    assert text.returncode == 0, text.stdout + text.stderr
    assert statuses(checks) == dict.fromkeys(NAMES, "ok")
    assert text.stdout.splitlines()[-1] == "everything checked is ok" and text.stderr == ""
    config = checks["config"]["details"]
    assert config["base_url"] == running.base_url and config["scheme"] == "http" and config["database"] == "external"
    assert "FEDSERVER_INSTANCE__DOMAIN" in config["environment"]
    data_dir = Path(running.env["FEDSERVER_STORAGE__DATA_DIR"])
    assert checks["data_dir"]["details"]["free_bytes"] > 0 and "free" in checks["data_dir"]["message"]
    assert not list(data_dir.glob(".fedserver-write-probe*"))  # written and deleted
    assert checks["database"]["details"]["kind"] == "external"
    assert "secret" not in json.dumps(checks)
    assert checks["migrations"]["details"]["pending"] == []
    # WebFinger was asked at the public address for the instance actor, and the answer pointed at it.
    webfinger = checks["webfinger"]["details"]
    assert webfinger["url"].startswith(f"{running.base_url}/.well-known/webfinger?resource=acct:")
    assert webfinger["actor"] == f"{running.base_url}/actor"
    clock = checks["clock"]["details"]
    assert abs(clock["database_skew_seconds"]) < 5 and abs(clock["public_skew_seconds"]) < 5
    assert time.monotonic() - started < 30


def test_doctor_names_a_database_that_does_not_answer(running):
    env = {**running.env, "FEDSERVER_DATABASE__URL": f"postgresql://fed:secret@127.0.0.1:{free_port()}/fed",
           "FEDSERVER_DATABASE__CONNECT_DEADLINE": "1"}
    started = time.monotonic()
    text, checks = doctor(env)
    assert text.returncode == 1
    assert statuses(checks) == {"config": "ok", "data_dir": "ok", "database": "problem", "migrations": "skipped",
                                "webfinger": "ok", "clock": "ok"}
    database = checks["database"]
    assert "cannot connect to the database at postgresql://fed:***@127.0.0.1" in database["message"]
    assert "FEDSERVER_DATABASE__URL" in database["fix"] and "secret" not in text.stdout
    assert "problem  database" in text.stdout and "fix: check [database] url" in text.stdout
    assert "Traceback" not in text.stderr and "does not answer yet" not in text.stderr
    assert time.monotonic() - started < 30  # two runs, each within its short deadline


def test_doctor_names_a_data_directory_below_a_file_and_run_refuses_it_in_one_line(running, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be\n")
    env = {**running.env, "FEDSERVER_STORAGE__DATA_DIR": str(blocker / "data")}
    text, checks = doctor(env)
    assert text.returncode == 1
    assert statuses(checks) == {**dict.fromkeys(NAMES, "ok"), "data_dir": "problem"}
    assert "is not writable" in checks["data_dir"]["message"]
    assert f"{blocker} is a file, not a directory" in checks["data_dir"]["fix"]
    assert "FEDSERVER_STORAGE__DATA_DIR" in checks["data_dir"]["fix"]
    _refused_in_one_line(fedserver("run", env={**env, "FEDSERVER_SERVER__PORT": str(free_port())}, timeout=60),
                         f"{blocker} is a file")


def test_a_read_only_data_directory_is_one_line_for_doctor_run_and_the_embedded_database(running, tmp_path):
    mount_point = tmp_path / "read-only"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.strip()}")
    try:
        env = {**running.env, "FEDSERVER_STORAGE__DATA_DIR": str(mount_point)}
        text, checks = doctor(env)
        assert text.returncode == 1 and checks["data_dir"]["status"] == "problem"
        assert "Read-only file system" in checks["data_dir"]["message"]
        assert "mount a writable volume there" in checks["data_dir"]["fix"]
        port = str(free_port())
        _refused_in_one_line(fedserver("run", env={**env, "FEDSERVER_SERVER__PORT": port}, timeout=60),
                             "read-only file system")
        # With no database URL the embedded PostgreSQL would live there: any command says so in one line.
        embedded = {**env, "FEDSERVER_DATABASE__URL": ""}
        _refused_in_one_line(fedserver("account", "create", "alice", env=embedded, timeout=60),
                             "read-only file system")
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def _refused_in_one_line(result: subprocess.CompletedProcess, fix: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("fedserver: error: the data directory ") and fix in result.stderr
    assert "FEDSERVER_STORAGE__DATA_DIR" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("change", ["a port where nothing listens", "https to a server that speaks http"])
def test_doctor_names_a_public_address_that_does_not_answer_webfinger(running, change):
    if change == "a port where nothing listens":
        env = {**running.env, "FEDSERVER_INSTANCE__DOMAIN": f"127.0.0.1:{free_port()}"}
    else:  # [instance] scheme is respected: https is asked for, and the instance does not speak it
        env = {**running.env, "FEDSERVER_INSTANCE__SCHEME": "https"}
    text, checks = doctor(env)
    assert text.returncode == 1
    assert statuses(checks) == {**dict.fromkeys(NAMES, "ok"), "webfinger": "problem"}
    webfinger = checks["webfinger"]
    scheme = env.get("FEDSERVER_INSTANCE__SCHEME", "http")
    assert webfinger["details"]["url"].startswith(f"{scheme}://{env['FEDSERVER_INSTANCE__DOMAIN']}/.well-known/")
    assert "failed" in webfinger["message"] and webfinger["fix"]
    assert checks["clock"]["details"]["public_skew_seconds"] is None  # the database's clock was still compared


def test_doctor_names_a_broken_configuration_and_checks_nothing_else(running):
    text, checks = doctor({**running.env, "FEDSERVER_SERVER__PORT": "eighty"})
    assert text.returncode == 1
    assert statuses(checks) == {"config": "problem", **dict.fromkeys(NAMES[1:], "skipped")}
    assert "[server] port (FEDSERVER_SERVER__PORT)" in checks["config"]["message"]
    assert text.stdout.count("\n") == len(NAMES) + 1  # one line per check and the summary


def test_doctor_on_an_embedded_database_uses_the_running_one_and_starts_none_that_was_never_made(tmp_path):
    port = free_port()
    env = instance_env(database_url="", data_dir=tmp_path / "data", port=port)
    instance = Instance(port=port, env=env, cwd=tmp_path, log_path=tmp_path / "server.log")
    pgdata = tmp_path / "data" / "postgres"
    try:
        text, checks = doctor(env)  # nothing exists yet: the doctor makes nothing
        assert statuses(checks)["data_dir"] == "warning" and statuses(checks)["database"] == "warning"
        assert checks["migrations"]["status"] == "skipped" and checks["webfinger"]["status"] == "problem"
        assert not (tmp_path / "data").exists()

        instance.start()
        text, checks = doctor(env)
        assert text.returncode == 0, text.stdout + text.stderr
        assert statuses(checks) == dict.fromkeys(NAMES, "ok")
        assert checks["database"]["details"]["kind"] == "embedded"
        assert "(the running server's)" in checks["database"]["message"]
        with urllib.request.urlopen(f"{instance.base_url}/healthz", timeout=5) as response:
            assert response.status == 200  # its database is still up

        assert instance.terminate() == 0
        text, checks = doctor(env)  # the doctor starts the stopped database for the check, and stops it again
        assert checks["database"]["status"] == "ok" and "(the running server's)" not in checks["database"]["message"]
        assert checks["webfinger"]["status"] == "problem" and text.returncode == 1
        assert not (pgdata / "postmaster.pid").exists()
    finally:
        instance.kill()
        _stop_left_postgres(pgdata)


def _stop_left_postgres(pgdata: Path) -> None:
    """Leave no PostgreSQL behind even when a test failed half-way."""
    pid_file = pgdata / "postmaster.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)
        except (ProcessLookupError, ValueError):
            pass
