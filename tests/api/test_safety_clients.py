"""Blocks, mutes, reports and moderation with real clients (Mastodon.py, toot) and a real peer (Fedify)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.database import query
from tests.support.instance import Instance, free_port, instance_env
from tests.support.peer import FedifyPeer, wait_for

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery staple"
TOOT = str(Path(sys.executable).parent / "toot")


def _toot(*args: str, home: Path) -> subprocess.CompletedProcess:
    environ = {"XDG_CONFIG_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(home)}
    return subprocess.run([TOOT, *args], env=environ, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def _received(peer: FedifyPeer, name: str, kind: str) -> list[dict]:
    return [r for r in peer.inbox(name, type=kind) if r["accepted"]]


def test_clients_block_mute_report_and_the_operator_blocks_the_peer(pg_cluster, tmp_path):
    from mastodon import Mastodon

    db_url = asyncio.run(pg_cluster.create_database())
    port = free_port()
    env = instance_env(database_url=db_url, data_dir=tmp_path / "data", port=port,
                       extra={"FEDSERVER_FEDERATION__RETRY_DELAY_SCALE": "0.01"})
    node = Instance(port=port, env=env, cwd=tmp_path, log_path=tmp_path / "server.log")
    peer = FedifyPeer(tmp_path / "peer.log")
    try:
        for name in ("alice", "carol"):
            created = node.command("account", "create", name, "--password-stdin", stdin=PASSWORD + "\n")
            assert created.returncode == 0, created.stderr
        node.start()
        peer.control("actors", name="dave")
        peer_host = peer.base_url.split("/")[2]
        dave = f"@dave@{peer_host}"

        client_id, secret = Mastodon.create_app("safety-test", api_base_url=node.base_url)
        app = Mastodon(client_id=client_id, client_secret=secret, api_base_url=node.base_url)
        api = Mastodon(access_token=app.log_in("alice", PASSWORD, allow_http=True), api_base_url=node.base_url)
        [found] = api.search_v2(dave, resolve=True).accounts

        # Mastodon.py: block (the peer gets Block), unblock (Undo{Block}), mute with options, report.
        relation = api.account_block(found.id)
        assert relation.blocking is True
        [block] = wait_for(lambda: _received(peer, "dave", "Block"), what="Block at the peer")
        assert block["activity"]["actor"] == f"{node.base_url}/users/alice"
        assert [a.id for a in api.blocks()] == [found.id]
        assert api.account_unblock(found.id).blocking is False
        wait_for(lambda: [u for u in _received(peer, "dave", "Undo") if u["activity"]["object"]["type"] == "Block"],
                 what="Undo{Block} at the peer")
        muted = api.account_mute(found.id, notifications=False, duration=3600)
        assert muted.muting is True and muted.muting_notifications is False
        [listed] = api.mutes()
        assert listed.id == found.id and listed.mute_expires_at is not None
        report = api.report(found.id, comment="spam", forward=True, category="spam")
        assert report.forwarded is True and report.category == "spam"
        [flag] = wait_for(lambda: _received(peer, "dave", "Flag"), what="Flag at the peer")
        assert flag["activity"]["actor"] == f"{node.base_url}/actor" and flag["signatureVerified"]
        assert flag["activity"]["content"] == "spam" and "alice" not in json.dumps(flag["activity"])

        # toot: block and mute by handle (it looks the account up first), as carol.
        home = tmp_path / "toot"
        login = _toot("login_cli", "--instance", node.base_url, "--email", "carol", "--password", PASSWORD,
                      home=home)
        assert login.returncode == 0, login.stdout + login.stderr
        for verb in ("block", "mute"):
            done = _toot(verb, dave, home=home)
            assert done.returncode == 0, done.stdout + done.stderr
        carol_token = json.loads((home / "toot" / "config.json").read_text())["users"]
        assert carol_token  # logged in
        carol = Mastodon(access_token=next(iter(carol_token.values()))["access_token"], api_base_url=node.base_url)
        [relation] = carol.account_relationships(found.id)
        assert relation.blocking is True and relation.muting is True
        wait_for(lambda: len(_received(peer, "dave", "Block")) == 2, what="carol's Block at the peer")

        # The operator: the report is listed, the peer's domain is blocked and its POSTs are refused.
        listed = node.command("moderate", "reports", "--json")
        assert listed.returncode == 0, listed.stderr
        [open_report] = json.loads(listed.stdout)
        assert (open_report["target"], open_report["category"], open_report["forwarded"]) == (
            peer.actor_url("dave"), "spam", True)
        blocked = node.command("moderate", "domain", "block", peer_host, "--reason", "spam wave")
        assert blocked.returncode == 0 and blocked.stdout.strip().startswith(f"blocked {peer_host}"), blocked.stderr
        before = query(db_url, "SELECT count(*) AS n FROM inbox_items")[0]["n"]
        wait_for(lambda: peer.control("send-raw", actor="dave", inbox=f"{node.base_url}/inbox", activity={
            "type": "Follow", "object": f"{node.base_url}/users/alice"})["status"] == 403,
            what="the peer's signed POST refused (within the moderation refresh)", timeout=10)
        assert query(db_url, "SELECT count(*) AS n FROM inbox_items")[0]["n"] == before
        resolved = node.command("moderate", "report", "resolve", str(open_report["id"]), "--reason", "blocked")
        assert resolved.returncode == 0 and resolved.stdout.strip() == f"resolved report {open_report['id']}"
        log = json.loads(node.command("moderate", "log", "--json").stdout)
        assert [(e["action"], e["target"], e["reason"]) for e in log] == [
            ("report.resolve", str(open_report["id"]), "blocked"), ("domain.block", peer_host, "spam wave")]
        assert all(e["moderator"].startswith("cli:") for e in log)
        bad = node.command("moderate", "domain", "block", f"127.0.0.1:{port}")
        assert bad.returncode == 1 and "own domain" in bad.stderr and "Traceback" not in bad.stderr
        unknown = node.command("moderate", "account", "suspend", "nobody")
        assert unknown.returncode == 1 and "no known account nobody" in unknown.stderr
        assert node.terminate() == 0
    finally:
        node.kill()
        peer.stop()
        asyncio.run(pg_cluster.drop_database(db_url))
