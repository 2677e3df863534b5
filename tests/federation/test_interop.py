"""Federation against a real peer: two fedserver instances and a Fedify 2.3.6 server on loopback.

Every flow is proven in both directions: what one side sends, the other side stores or
shows. The fedserver side is driven through its command line, the Fedify side through
its control API, and both are observed from their own state (database rows, peer inbox).
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.support.database import query
from tests.support.instance import Instance, free_port, instance_env
from tests.support.peer import FedifyPeer, wait_for

pytestmark = pytest.mark.slow
_names = (f"u{i}" for i in itertools.count(1))


class Node:
    """One running fedserver instance and its database."""

    def __init__(self, instance: Instance, db_url: str):
        self.instance = instance
        self.db_url = db_url

    @property
    def base(self) -> str:
        return self.instance.base_url

    def actor(self, name: str) -> str:
        return f"{self.base}/users/{name}"

    def cli(self, *args: str) -> str:
        result = self.instance.command(*args)
        assert result.returncode == 0, f"fedserver {' '.join(args)}: {result.stderr}\n{self.instance.log()}"
        return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""

    def account(self, *, locked: bool = False) -> str:
        name = next(_names)
        self.cli("account", "create", name, *(["--locked"] if locked else []))
        return name

    def rows(self, sql: str, *args):
        return query(self.db_url, sql, *args)

    def follow_state(self, follower: str, followee: str) -> str | None:
        rows = self.rows("""SELECT f.state FROM follows f JOIN actors a ON a.id = f.follower_id
                            JOIN actors b ON b.id = f.followee_id WHERE a.uri = $1 AND b.uri = $2""",
                         follower, followee)
        return rows[0]["state"] if rows else None

    def post_id(self, name: str, text: str, *extra: str) -> str:
        return self.cli("post", name, text, *extra)


@pytest.fixture(scope="module")
def cluster(pg_cluster, tmp_path_factory):
    """Instances A and B and the Fedify peer, for the whole module."""
    nodes = []
    for label in ("a", "b"):
        db_url = asyncio.run(pg_cluster.create_database())
        port = free_port()
        root = tmp_path_factory.mktemp(f"node-{label}")
        env = instance_env(database_url=db_url, data_dir=root / "data", port=port,
                           extra={"FEDSERVER_FEDERATION__RETRY_DELAY_SCALE": "0.01"})
        instance = Instance(port=port, env=env, cwd=root, log_path=root / "server.log")
        instance.start()
        nodes.append(Node(instance, db_url))
    peer = FedifyPeer(tmp_path_factory.mktemp("peer") / "peer.log")
    yield nodes[0], nodes[1], peer
    peer.stop()
    for node in nodes:
        node.instance.terminate()
        asyncio.run(pg_cluster.drop_database(node.db_url))


def _peer_actor(peer: FedifyPeer, *, locked: bool = False) -> str:
    name = next(_names)
    peer.control("actors", name=name, locked=locked)
    return name


def _peer_follows(peer: FedifyPeer, name: str, state: str = "accepted") -> list:
    return [f for f in peer.control("following", method="GET", actor=name) if f.get("state", state) == state]


def _received(peer: FedifyPeer, name: str, kind: str, **filters) -> list[dict]:
    return [r for r in peer.inbox(name, type=kind, **filters) if r["accepted"]]


def _followed_pair(node: Node, peer: FedifyPeer) -> tuple[str, str]:
    """A fedserver account and a peer actor that follow each other."""
    mine, theirs = node.account(), _peer_actor(peer)
    peer.control("follow", actor=theirs, target=node.actor(mine))
    node.cli("follow", mine, peer.actor_url(theirs))
    wait_for(lambda: node.follow_state(node.actor(mine), peer.actor_url(theirs)) == "accepted",
             what="fedserver's follow of the peer accepted")
    wait_for(lambda: node.follow_state(peer.actor_url(theirs), node.actor(mine)) == "accepted",
             what="the peer's follow stored as accepted")
    return mine, theirs


# --- follow and accept -------------------------------------------------------------------


def test_peer_follows_fedserver_and_gets_an_accept(cluster):
    node, _, peer = cluster
    mine, theirs = node.account(), _peer_actor(peer)
    peer.control("follow", actor=theirs, target=node.actor(mine))
    wait_for(lambda: _received(peer, theirs, "Accept"), what="Accept at the peer")
    wait_for(lambda: node.follow_state(peer.actor_url(theirs), node.actor(mine)) == "accepted",
             what="follow stored")
    accept = _received(peer, theirs, "Accept")[0]
    assert accept["httpSignature"]["verified"] is True
    assert accept["activity"]["actor"] == node.actor(mine)


def test_fedserver_follows_peer_and_gets_an_accept(cluster):
    node, _, peer = cluster
    mine, theirs = node.account(), _peer_actor(peer)
    follow_id = node.cli("follow", mine, peer.actor_url(theirs))
    assert follow_id.startswith(node.actor(mine))
    wait_for(lambda: node.follow_state(node.actor(mine), peer.actor_url(theirs)) == "accepted",
             what="Accept processed by fedserver")
    follows = _received(peer, theirs, "Follow")
    assert follows and follows[0]["httpSignature"]["verified"] is True


def test_locked_accounts_keep_follows_pending_both_ways(cluster):
    node, _, peer = cluster
    locked_here, follower_there = node.account(locked=True), _peer_actor(peer)
    peer.control("follow", actor=follower_there, target=node.actor(locked_here))
    wait_for(lambda: node.follow_state(peer.actor_url(follower_there), node.actor(locked_here)) == "pending",
             what="pending follow request at fedserver")
    assert not _received(peer, follower_there, "Accept")
    node.cli("follow-requests", locked_here, "--accept", peer.actor_url(follower_there))
    wait_for(lambda: _received(peer, follower_there, "Accept"), what="Accept after approval")

    follower_here, locked_there = node.account(), _peer_actor(peer, locked=True)
    node.cli("follow", follower_here, peer.actor_url(locked_there))
    wait_for(lambda: peer.control("follow-requests", method="GET", actor=locked_there),
             what="follow request at the peer")
    assert node.follow_state(node.actor(follower_here), peer.actor_url(locked_there)) == "pending"
    peer.control("accept-follow", actor=locked_there, follower=node.actor(follower_here))
    wait_for(lambda: node.follow_state(node.actor(follower_here), peer.actor_url(locked_there)) == "accepted",
             what="approval processed by fedserver")


# --- posts, likes, announces, replies ------------------------------------------------------


def test_posts_reach_followers_both_ways(cluster):
    node, _, peer = cluster
    mine, theirs = _followed_pair(node, peer)
    note_id = node.post_id(mine, "안녕하세요, 도자기 공방입니다")
    created = wait_for(lambda: _received(peer, theirs, "Create"), what="Create at the peer")
    assert created[0]["activity"]["object"]["id"] == note_id
    assert "도자기 공방" in created[0]["activity"]["object"]["content"]

    article_id = node.cli("post", mine, "A long blog post body", "--article", "--title", "Kiln diary")
    wait_for(lambda: any(r["activity"]["object"]["id"] == article_id for r in _received(peer, theirs, "Create")),
             what="Article at the peer")
    article = next(r for r in _received(peer, theirs, "Create") if r["activity"]["object"]["id"] == article_id)
    assert article["activity"]["object"]["type"] == "Article"
    assert article["activity"]["object"]["name"] == "Kiln diary"

    their_note = peer.control("note", actor=theirs, content="<p>hello from fedify</p>", to="public")
    their_id = their_note["id"] if isinstance(their_note, dict) else their_note
    wait_for(lambda: node.rows("SELECT 1 FROM objects WHERE uri = $1", their_id), what="peer note stored")
    content = node.rows("SELECT content FROM objects WHERE uri = $1", their_id)[0]["content"]
    assert "hello from fedify" in content


def test_likes_and_undos_both_ways(cluster):
    node, _, peer = cluster
    mine, theirs = _followed_pair(node, peer)
    note_id = node.post_id(mine, "like me")
    peer.control("like", actor=theirs, object=note_id)
    wait_for(lambda: node.rows("SELECT 1 FROM likes WHERE object_uri = $1", note_id), what="like stored")
    peer.control("unlike", actor=theirs, object=note_id)
    wait_for(lambda: not node.rows("SELECT 1 FROM likes WHERE object_uri = $1", note_id), what="like undone")

    their_id = _id(peer.control("note", actor=theirs, content="<p>like this</p>", to="public"))
    wait_for(lambda: node.rows("SELECT 1 FROM objects WHERE uri = $1", their_id), what="peer note stored")
    node.cli("like", mine, their_id)
    wait_for(lambda: _received(peer, theirs, "Like"), what="Like at the peer")
    assert _received(peer, theirs, "Like")[0]["activity"]["object"] == their_id
    node.cli("unlike", mine, their_id)
    undo = wait_for(lambda: _received(peer, theirs, "Undo"), what="Undo(Like) at the peer")
    assert undo[0]["activity"]["object"]["type"] == "Like"


def test_announces_and_undos_both_ways(cluster):
    node, _, peer = cluster
    mine, theirs = _followed_pair(node, peer)
    note_id = node.post_id(mine, "share me")
    peer.control("announce", actor=theirs, object=note_id)
    wait_for(lambda: node.rows("SELECT 1 FROM announces WHERE object_uri = $1", note_id), what="announce stored")
    peer.control("unannounce", actor=theirs, object=note_id)
    wait_for(lambda: not node.rows("SELECT 1 FROM announces WHERE object_uri = $1", note_id),
             what="announce undone")

    their_id = _id(peer.control("note", actor=theirs, content="<p>boost this</p>", to="public"))
    wait_for(lambda: node.rows("SELECT 1 FROM objects WHERE uri = $1", their_id), what="peer note stored")
    node.cli("announce", mine, their_id)
    wait_for(lambda: _received(peer, theirs, "Announce"), what="Announce at the peer")
    node.cli("unannounce", mine, their_id)
    wait_for(lambda: [r for r in _received(peer, theirs, "Undo") if r["activity"]["object"]["type"] == "Announce"],
             what="Undo(Announce) at the peer")


def test_replies_thread_both_ways(cluster):
    node, _, peer = cluster
    mine, theirs = _followed_pair(node, peer)
    note_id = node.post_id(mine, "what do you think?")
    reply_id = _id(peer.control("note", actor=theirs, content="<p>lovely</p>", to="public", inReplyTo=note_id,
                                mentions=[node.actor(mine)]))
    wait_for(lambda: node.rows("SELECT 1 FROM objects WHERE uri = $1 AND in_reply_to_uri = $2", reply_id, note_id),
             what="reply threaded at fedserver")

    my_reply = node.cli("post", mine, "thank you", "--reply-to", reply_id)
    created = wait_for(lambda: [r for r in _received(peer, theirs, "Create")
                                if r["activity"]["object"]["id"] == my_reply], what="reply at the peer")
    assert created[0]["activity"]["object"]["inReplyTo"] == reply_id


def test_deletes_both_ways(cluster):
    node, _, peer = cluster
    mine, theirs = _followed_pair(node, peer)
    note_id = node.post_id(mine, "soon gone")
    wait_for(lambda: _received(peer, theirs, "Create"), what="Create at the peer")
    node.cli("delete", mine, note_id)
    deleted = wait_for(lambda: _received(peer, theirs, "Delete"), what="Delete at the peer")
    assert _ref(deleted[0]["activity"]["object"]) == note_id

    their_id = _id(peer.control("note", actor=theirs, content="<p>temporary</p>", to="public"))
    wait_for(lambda: node.rows("SELECT 1 FROM objects WHERE uri = $1", their_id), what="peer note stored")
    peer.control("delete-note", actor=theirs, note=their_id)
    wait_for(lambda: node.rows("SELECT 1 FROM objects WHERE uri = $1 AND deleted_at IS NOT NULL", their_id),
             what="peer note deleted at fedserver")
    assert node.rows("SELECT 1 FROM tombstones WHERE uri = $1", their_id)


def test_actor_updates_both_ways(cluster):
    node, _, peer = cluster
    mine, theirs = _followed_pair(node, peer)
    peer.control("update-actor", actor=theirs, name="Renamed at Fedify")
    wait_for(lambda: node.rows("SELECT 1 FROM actors WHERE uri = $1 AND display_name = 'Renamed at Fedify'",
                               peer.actor_url(theirs)), what="actor update at fedserver")
    node.cli("account", "update", mine, "--display-name", "새 이름")
    update = wait_for(lambda: _received(peer, theirs, "Update"), what="Update(Person) at the peer")
    assert update[0]["activity"]["object"]["name"] == "새 이름"


def test_blocks_both_ways(cluster):
    node, _, peer = cluster
    # A local block reaches the peer as Block, ends the follows both ways, and is lifted by Undo{Block}.
    mine, theirs = _followed_pair(node, peer)
    node.cli("block", mine, peer.actor_url(theirs))
    [block] = wait_for(lambda: _received(peer, theirs, "Block"), what="Block at the peer")
    assert _ref(block["activity"]["object"]) == peer.actor_url(theirs)
    assert block["activity"]["actor"] == node.actor(mine)
    assert node.follow_state(node.actor(mine), peer.actor_url(theirs)) is None
    assert node.follow_state(peer.actor_url(theirs), node.actor(mine)) is None
    assert not _peer_follows(peer, theirs)
    node.cli("unblock", mine, peer.actor_url(theirs))
    undo = wait_for(lambda: [u for u in _received(peer, theirs, "Undo")
                             if u["activity"]["object"]["type"] == "Block"], what="Undo{Block} at the peer")
    assert undo[0]["activity"]["object"]["id"] == block["activity"]["id"]

    # The peer's Block of a local account: follows end, and its posts leave the local home timeline.
    mine, theirs = _followed_pair(node, peer)
    their_id = _id(peer.control("note", actor=theirs, content="<p>before the block</p>", to="public"))
    home = """SELECT count(*) AS n FROM home_feed h JOIN actors a ON a.id = h.account_id
              JOIN objects o ON o.id = h.object_id WHERE a.username = $1 AND a.is_local AND o.uri = $2"""
    wait_for(lambda: node.rows(home, mine, their_id)[0]["n"] == 1, what="the peer's note in the home timeline")
    peer.control("block", actor=theirs, target=node.actor(mine))
    wait_for(lambda: node.rows("""SELECT 1 FROM blocks b JOIN actors x ON x.id = b.actor_id
                                  JOIN actors y ON y.id = b.target_id WHERE x.uri = $1 AND y.uri = $2""",
                               peer.actor_url(theirs), node.actor(mine)), what="the peer's Block stored")
    assert node.follow_state(node.actor(mine), peer.actor_url(theirs)) is None
    assert node.follow_state(peer.actor_url(theirs), node.actor(mine)) is None
    assert node.rows(home, mine, their_id)[0]["n"] == 0


# --- fedserver to fedserver ------------------------------------------------------------------


def test_two_fedserver_instances_federate_every_flow(cluster):
    a, b, _ = cluster
    alice, bob = a.account(), b.account()
    a.cli("follow", alice, b.actor(bob))
    b.cli("follow", bob, a.actor(alice))
    for node, follower, followee in ((a, a.actor(alice), b.actor(bob)), (b, b.actor(bob), a.actor(alice))):
        wait_for(lambda: node.follow_state(follower, followee) == "accepted", what=f"{follower} follows")

    post = a.post_id(alice, "from A")
    wait_for(lambda: b.rows("SELECT 1 FROM objects WHERE uri = $1", post), what="A's post at B")
    b.cli("like", bob, post)
    b.cli("announce", bob, post)
    reply = b.cli("post", bob, "reply from B", "--reply-to", post)
    wait_for(lambda: a.rows("SELECT 1 FROM likes WHERE object_uri = $1", post), what="B's like at A")
    wait_for(lambda: a.rows("SELECT 1 FROM announces WHERE object_uri = $1", post), what="B's announce at A")
    wait_for(lambda: a.rows("SELECT 1 FROM objects WHERE uri = $1 AND in_reply_to_uri = $2", reply, post),
             what="B's reply at A")
    b.cli("unlike", bob, post)
    wait_for(lambda: not a.rows("SELECT 1 FROM likes WHERE object_uri = $1", post), what="unlike at A")
    a.cli("delete", alice, post)
    wait_for(lambda: b.rows("SELECT 1 FROM objects WHERE uri = $1 AND deleted_at IS NOT NULL", post),
             what="delete at B")
    a.cli("account", "update", alice, "--display-name", "Alice A")
    wait_for(lambda: b.rows("SELECT 1 FROM actors WHERE uri = $1 AND display_name = 'Alice A'", a.actor(alice)),
             what="profile update at B")
    b.cli("unfollow", bob, a.actor(alice))
    wait_for(lambda: a.follow_state(b.actor(bob), a.actor(alice)) is None, what="unfollow at A")


def _id(value) -> str:
    return value["id"] if isinstance(value, dict) else value


def _ref(value) -> str:
    return value["id"] if isinstance(value, dict) else value
