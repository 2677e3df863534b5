"""What the command line prints for scripts and people: `--json` on every list, progress bars only on a terminal,
one line when the data directory cannot take a file."""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
import time

import pytest
from PIL import Image

import rewards.verify
from fedserver.accounts import create_account, validate_new_account
from fedserver.config import load_settings
from fedserver.db import load_migrations
from rewards.client import LogClient
from rewards.context import http_session
from tests.support.instance import REPO, fedserver, instance_env
from tests.support.rewards import (
    account_with_post,
    befriend,
    deliver_all,
    interact,
    publish_live,
    start_live_instance,
    stop_live_instance,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def env(db_url, tmp_path) -> dict:
    """A loopback instance's configuration (no server running: the commands work on the database)."""
    return instance_env(database_url=db_url, data_dir=tmp_path / "data", port=8999)


def run(env: dict, *args: str) -> str:
    result = fedserver(*args, env=env)
    assert result.returncode == 0, f"fedserver {' '.join(args)}: {result.stderr}"
    return result.stdout


def as_json(env: dict, *args: str):
    return json.loads(run(env, *args, "--json"))


async def test_every_list_command_prints_json_with_what_was_made(env, pool):
    base = "http://127.0.0.1:8999"
    run(env, "account", "create", "potter", "--locked", "--display-name", "도예가")
    run(env, "account", "create", "buyer")
    settings = load_settings(environ=env)
    await create_account(pool, settings, validate_new_account(username="weaver"), approved=False,
                         signup_reason="직조 공방을 운영합니다")
    await pool.execute("""INSERT INTO follows (follower_id, followee_id, state)
                          SELECT b.id, p.id, 'pending' FROM actors b, actors p
                          WHERE b.username = 'buyer' AND p.username = 'potter'""")
    listing = run(env, "product", "create", "potter", "--title", "청자 찻잔", "--price", "38000",
                  "--stock", "3").splitlines()[-1]
    order = run(env, "order", "create", "buyer", listing, "--quantity", "2").splitlines()[-1]

    accounts = as_json(env, "account", "list")
    assert [(a["name"], a["display_name"]) for a in accounts] == [("potter", "도예가"), ("buyer", ""), ("weaver", "")]
    pending = as_json(env, "account", "pending")
    assert [(s["name"], s["reason"]) for s in pending] == [("weaver", "직조 공방을 운영합니다")]
    assert pending[0]["uri"] == f"{base}/users/weaver" and "weaver" in run(env, "account", "pending")
    requests = as_json(env, "follow-requests", "potter")
    assert requests == [{"actor": f"{base}/users/buyer"}]
    assert run(env, "follow-requests", "potter").split() == [r["actor"] for r in requests]
    products = as_json(env, "product", "list", "potter")
    assert [(p["url"], p["title"], p["price_krw"], p["stock"]) for p in products] == [(listing, "청자 찻잔", 38000, 1)]
    for name, role in (("potter", "seller"), ("buyer", "buyer")):
        orders = as_json(env, "order", "list", name, "--role", role)
        assert [(o["id"], o["quantity"], o["listing"]) for o in orders] == [(order, 2, listing)]
    deliveries = as_json(env, "deliveries")
    assert set(deliveries["counts"]) == {"queued", "delivered", "failed", "gone"}
    assert isinstance(deliveries["deliveries"], list)
    assert as_json(env, "rewards", "alerts", "--all") == []
    policy = as_json(env, "rewards", "policy")
    assert set(policy["keys"]) == {"receipts", "log", "witness"} and policy["origin"] == "127.0.0.1:8999/rewards/v1"
    assert policy["points"]["version"] == 2 and policy["members"] == []
    assert policy["keys"]["receipts"] in run(env, "rewards", "policy")


async def test_migrate_draws_a_progress_bar_only_when_standard_error_is_a_terminal(pg_cluster, tmp_path):
    names = [f"applied {m.version:04d}_{m.name}" for m in load_migrations()]
    piped = fedserver("migrate", env=_fresh(await pg_cluster.create_empty_database(), tmp_path))
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.splitlines() == names
    assert piped.stderr == ""  # no bar, no control characters, nothing

    out, terminal = _with_terminal_stderr(["migrate"], _fresh(await pg_cluster.create_empty_database(), tmp_path))
    assert out.splitlines() == names  # standard output is the same, clean
    assert "migrating" in terminal and "━" in terminal  # the bar was drawn on the terminal
    assert "\x1b[" in terminal


def _fresh(url: str, tmp_path) -> dict:
    return instance_env(database_url=url, data_dir=tmp_path / "data", port=8999)


def _with_terminal_stderr(args: list[str], env: dict) -> tuple[str, str]:
    """Run fedserver with standard error on a pseudo-terminal; return standard output and what the terminal got."""
    leader, follower = os.openpty()
    process = subprocess.Popen([sys.executable, "-m", "fedserver", *args], env={**env, "TERM": "xterm"},
                               stdout=subprocess.PIPE, stderr=follower, stdin=subprocess.DEVNULL, cwd=REPO)
    os.close(follower)
    received = bytearray()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the last writer closed the terminal
                break
            if not chunk:
                break
            received += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    out = process.stdout.read().decode() if process.stdout else ""
    assert process.wait(30) == 0, received.decode(errors="replace")
    return out, received.decode(errors="replace")


def test_an_image_upload_into_an_unwritable_data_directory_is_one_line(env, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    run(env, "account", "create", "potter")
    image = tmp_path / "cup.png"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (180, 90, 40)).save(buffer, "PNG")
    image.write_bytes(buffer.getvalue())
    result = fedserver("product", "create", "potter", "--title", "찻잔", "--price", "1000", "--image", str(image),
                       env={**env, "FEDSERVER_STORAGE__DATA_DIR": str(blocker / "data")})
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"fedserver: error: the data directory {blocker / 'data'} is not writable")
    assert f"{blocker} is a file" in result.stderr and "Traceback" not in result.stderr
    assert as_json(env, "product", "list", "potter") == []  # nothing half-made


async def test_rewards_verify_reports_progress_for_each_entry_fetched_and_verified(pg_cluster, tmp_path, monkeypatch):
    a = await start_live_instance(pg_cluster, tmp_path, "a")
    b = await start_live_instance(pg_cluster, tmp_path, "b")
    try:
        await befriend(a, b)
        await befriend(b, a)
        alice, post = await account_with_post(a.pool, a.settings, "alice")
        bob, _ = await account_with_post(b.pool, b.settings, "bob")
        for kind in ("like", "announce", "reply"):
            assert await interact(b, bob, post, alice, kind)
        await deliver_all(b)
        assert await publish_live(a)
        # 5 receipts (policy 2: the share and the reply also issue bob's curation receipts): reported 2, 2, 1
        monkeypatch.setattr(rewards.verify, "PROGRESS_STEP", 2)
        calls: list[tuple[int, int | None, str | None]] = []

        def advance(n: int = 1, *, total: int | None = None, description: str | None = None) -> None:
            calls.append((n, total, description))

        keys = {m.domain: m.receipts for m in (await b.ctx.members(b.pool, fresh=True)).values()}
        keys[b.ctx.keys.domain] = b.ctx.keys.receipts_verifier()
        async with http_session(b.settings) as session:
            report = await rewards.verify.verify_log(LogClient(session, f"{a.url}/rewards/log"), b.ctx.policy(),
                                                     keys, None, advance)
        assert report.size == 5
        assert calls[0] == (0, 10, "fetching 5 entries")
        assert sum(n for n, _, _ in calls) == 2 * report.size
        verifying = calls.index((0, None, "verifying 5 receipts"))
        assert [n for n, _, _ in calls[verifying + 1:]] == [2, 2, 1]
    finally:
        await stop_live_instance(pg_cluster, b)
        await stop_live_instance(pg_cluster, a)
