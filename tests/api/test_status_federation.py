"""The client API federates: two `fedserver run` processes on loopback, driven with Mastodon.py.

alice lives on A and bob on B; they follow each other (command line). Everything else goes
through the API of each side, and is checked on the other side's API and database.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from mastodon import Mastodon

from tests.api.schemas import check_notification, check_status
from tests.support.database import query
from tests.support.instance import Instance, free_port, instance_env
from tests.support.peer import wait_for

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery staple"
TOOT = str(Path(sys.executable).parent / "toot")


class Side:
    """One instance, its database and one logged-in Mastodon.py client."""

    def __init__(self, instance: Instance, db_url: str, name: str):
        self.instance, self.db_url, self.name = instance, db_url, name
        created = instance.command("account", "create", name, "--password-stdin", stdin=PASSWORD + "\n")
        assert created.returncode == 0, created.stderr
        client_id, secret = Mastodon.create_app("fed-test", api_base_url=instance.base_url)
        app = Mastodon(client_id=client_id, client_secret=secret, api_base_url=instance.base_url)
        self.token = app.log_in(name, PASSWORD, allow_http=True)
        self.api = Mastodon(access_token=self.token, api_base_url=instance.base_url)

    @property
    def actor(self) -> str:
        return f"{self.instance.base_url}/users/{self.name}"

    @property
    def handle(self) -> str:
        return f"@{self.name}@127.0.0.1:{self.instance.port}"

    def rows(self, sql: str, *args):
        return query(self.db_url, sql, *args)

    def cli(self, *args: str) -> None:
        result = self.instance.command(*args)
        assert result.returncode == 0, result.stderr

    def raw(self, path: str):
        """The JSON of a GET, untouched by Mastodon.py (to check the required fields)."""
        response = requests.get(self.instance.base_url + path, headers={"Authorization": f"Bearer {self.token}"},
                                timeout=30)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def sides(pg_cluster, tmp_path_factory):
    """A (alice) and B (bob), following each other."""
    made = []
    for label, name in (("a", "alice"), ("b", "bob")):
        db_url = asyncio.run(pg_cluster.create_database())
        port = free_port()
        root = tmp_path_factory.mktemp(f"api-node-{label}")
        env = instance_env(database_url=db_url, data_dir=root / "data", port=port,
                           extra={"FEDSERVER_FEDERATION__RETRY_DELAY_SCALE": "0.01"})
        instance = Instance(port=port, env=env, cwd=root, log_path=root / "server.log")
        instance.start()
        made.append(Side(instance, db_url, name))
    a, b = made
    b.cli("follow", "bob", a.actor)
    a.cli("follow", "alice", b.actor)
    for side, follower, followee in ((a, a.actor, b.actor), (b, b.actor, a.actor)):
        wait_for(lambda: side.rows("""SELECT 1 FROM follows f JOIN actors x ON x.id = f.follower_id
                                      JOIN actors y ON y.id = f.followee_id
                                      WHERE x.uri = $1 AND y.uri = $2 AND f.state = 'accepted'""",
                                   follower, followee), what=f"{follower} follows {followee}")
    yield a, b
    for side in made:
        side.instance.terminate()
        asyncio.run(pg_cluster.drop_database(side.db_url))


def _on(side: Side, uri: str, timeline: str = "home") -> dict | None:
    """The status with this ActivityPub id in a timeline of `side`, if it is there yet."""
    statuses = side.api.timeline_home() if timeline == "home" else side.api.timeline_public()
    return next((s for s in statuses if s.uri == uri or (s.reblog and s.reblog.uri == uri)), None)


def test_an_api_post_reaches_the_remote_follower_and_their_home_timeline(sides):
    a, b = sides
    posted = a.api.status_post("첫 글 #도자기 from the API", language="ko", spoiler_text="공지")
    assert posted.account.acct == "alice"
    seen = wait_for(lambda: _on(b, posted.uri), what="alice's post in bob's home timeline on B")
    assert seen.account.acct == f"alice@127.0.0.1:{a.instance.port}" and "첫 글" in seen.content
    assert seen.spoiler_text == "공지" and seen.language == "ko" and [t.name for t in seen.tags] == ["도자기"]
    check_status(b.raw(f"/api/v1/statuses/{seen.id}"))
    assert b.api.timeline_hashtag("도자기")[0].uri == posted.uri


def test_favourite_and_boost_of_a_remote_post_reach_its_author_as_notifications(sides):
    a, b = sides
    posted = a.api.status_post("like and boost me")
    remote_copy = wait_for(lambda: _on(b, posted.uri), what="the post on B")
    assert b.api.status_favourite(remote_copy.id).favourited is True
    boost = b.api.status_reblog(remote_copy.id)
    assert boost.reblog.id == remote_copy.id
    wait_for(lambda: a.rows("SELECT 1 FROM likes WHERE object_uri = $1", posted.uri), what="the Like on A")
    wait_for(lambda: a.rows("SELECT 1 FROM announces WHERE object_uri = $1", posted.uri), what="the Announce on A")
    kinds = wait_for(lambda: {n.type for n in a.api.notifications() if n.status and n.status.id == posted.id}
                     >= {"favourite", "reblog"} and a.api.notifications(), what="notifications on A")
    for item in a.raw("/api/v1/notifications"):
        check_notification(item)
    assert {n.account.acct for n in kinds if n.type in ("favourite", "reblog")} == {
        f"bob@127.0.0.1:{b.instance.port}"}
    after = a.api.status(posted.id)
    assert (after.favourites_count, after.reblogs_count) == (1, 1)
    b.api.status_unfavourite(remote_copy.id)
    wait_for(lambda: not a.rows("SELECT 1 FROM likes WHERE object_uri = $1", posted.uri), what="the Undo on A")


def test_remote_replies_mentions_and_follows_become_notifications(sides):
    a, b = sides
    posted = a.api.status_post("what do you think?")
    remote_copy = wait_for(lambda: _on(b, posted.uri), what="the post on B")
    reply = b.api.status_post(f"{a.handle} lovely", in_reply_to_id=remote_copy.id)
    assert reply.mentions[0].acct == f"alice@127.0.0.1:{a.instance.port}"
    mention = wait_for(lambda: next((n for n in a.api.notifications(types=["mention"])
                                     if n.status.uri == reply.uri), None), what="the mention on A")
    assert mention.status.in_reply_to_id == posted.id
    assert any(n.type == "follow" for n in a.api.notifications())
    context = a.api.status_context(posted.id)
    assert [s.uri for s in context.descendants] == [reply.uri]
    assert _on(a, reply.uri) is not None  # bob is followed: his reply to alice reaches her home timeline


def test_edit_and_delete_through_the_api_federate(sides):
    a, b = sides
    posted = a.api.status_post("first version")
    remote_copy = wait_for(lambda: _on(b, posted.uri), what="the post on B")
    edited = a.api.status_update(posted.id, "second version")
    assert edited.edited_at is not None
    wait_for(lambda: "second version" in b.api.status(remote_copy.id).content, what="the edit on B")
    deleted = a.api.status_delete(posted.id)
    assert deleted.text == "second version"
    wait_for(lambda: b.rows("SELECT 1 FROM objects WHERE uri = $1 AND deleted_at IS NOT NULL", posted.uri),
             what="the delete on B")
    assert _on(b, posted.uri) is None


def test_mastodon_py_pages_the_home_timeline_with_fetch_next(sides):
    a, _ = sides
    for n in range(5):
        a.api.status_post(f"page {n}", visibility="unlisted")
    first = a.api.timeline_home(limit=2)
    second = a.api.fetch_next(first)
    third = a.api.fetch_next(second)
    ids = [s.id for s in first + second + third]
    assert len(ids) == 6 and len(set(ids)) == 6 and ids == sorted(ids, key=int, reverse=True)
    assert [s.id for s in a.api.fetch_previous(second)] == [s.id for s in first]


def _toot(*args: str, home: Path) -> subprocess.CompletedProcess:
    environ = {"XDG_CONFIG_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(home)}
    return subprocess.run([TOOT, *args], env=environ, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_toot_posts_and_reads_the_timeline(sides, tmp_path):
    a, b = sides
    home = tmp_path / "toot"
    login = _toot("login_cli", "--instance", a.instance.base_url, "--email", "alice", "--password", PASSWORD,
                  home=home)
    assert login.returncode == 0, login.stdout + login.stderr
    posted = _toot("post", "toot에서 보낸 글 #공방", home=home)
    assert posted.returncode == 0 and "Toot posted" in posted.stdout, posted.stdout + posted.stderr
    url = posted.stdout.strip().split()[-1]
    assert url.startswith(f"{a.actor}/statuses/")
    timeline = _toot("timeline", "--once", "--count", "5", home=home)
    assert timeline.returncode == 0 and "toot에서 보낸 글" in timeline.stdout, timeline.stdout + timeline.stderr
    wait_for(lambda: _on(b, url), what="toot's post in bob's home timeline on B")
