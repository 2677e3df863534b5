"""The storefront against the Fedify peer: it receives a listing with its FEP-0837 fields, orders as a
machine peer (Offer{Agreement} → Accept), and as a Mastodon user would (a direct reply "주문 2개")."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.database import query
from tests.support.instance import Instance, free_port, instance_env
from tests.support.peer import FedifyPeer, wait_for

pytestmark = pytest.mark.slow
KRW = "https://www.wikidata.org/wiki/Q202040"


@pytest.fixture(scope="module")
def shop(pg_cluster, tmp_path_factory):
    db_url = asyncio.run(pg_cluster.create_database())
    port = free_port()
    root = tmp_path_factory.mktemp("shop")
    env = instance_env(database_url=db_url, data_dir=root / "data", port=port,
                       extra={"FEDSERVER_FEDERATION__RETRY_DELAY_SCALE": "0.01"})
    instance = Instance(port=port, env=env, cwd=root, log_path=root / "server.log")
    instance.start()
    peer = FedifyPeer(tmp_path_factory.mktemp("peer") / "peer.log")
    yield instance, db_url, peer
    peer.stop()
    instance.terminate()
    asyncio.run(pg_cluster.drop_database(db_url))


def _cli(instance: Instance, *args: str) -> str:
    result = instance.command(*args)
    assert result.returncode == 0, f"fedserver {' '.join(args)}: {result.stderr}\n{instance.log()}"
    return result.stdout.strip().splitlines()[-1]


def test_a_fediverse_peer_sees_the_listing_and_orders_both_ways(shop):
    instance, db_url, peer = shop
    _cli(instance, "account", "create", "pottery")
    maker = f"{instance.base_url}/users/pottery"
    peer.control("actors", name="mina")
    peer.control("follow", actor="mina", target=maker)
    wait_for(lambda: peer.control("following", method="GET", actor="mina", state="accepted"), what="the follow")
    listing = _cli(instance, "product", "create", "pottery", "--title", "분청 접시", "--price", "45000",
                   "--stock", "5", "--tag", "수공예")

    create = peer.inbox("mina", wait=20, type="Create", objectType="Note")[-1]["activity"]
    note = create["object"]
    assert note["id"] == listing and note["purpose"] == "offer"
    assert note["publishes"]["availableQuantity"]["hasNumericalValue"] == "5"
    assert note["reciprocal"]["resourceConformsTo"] == KRW
    assert note["reciprocal"]["resourceQuantity"]["hasNumericalValue"] == "45000"
    assert "₩45,000" in note["content"] and "5개 남음" in note["content"]

    # As a machine peer: Offer{Agreement}, answered by Accept{Offer, result: Agreement}.
    agreement_id = f"{peer.base_url}/users/mina/orders/1"
    offer = {"type": "Offer", "to": [maker], "object": {
        "type": "Agreement", "id": agreement_id,
        "stipulates": {"type": "Commitment", "satisfies": f"{listing}#primary",
                       "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "1"}},
        "stipulatesReciprocal": {"type": "Commitment", "satisfies": f"{listing}#reciprocal",
                                 "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "45000"}}}}
    sent = peer.control("send-raw", actor="mina", inbox=f"{maker}/inbox", activity=offer)
    assert sent["status"] == 202, sent
    accept = peer.inbox("mina", wait=20, type="Accept", objectType="Offer")[-1]
    assert accept["signatureVerified"] and accept["activity"]["object"]["id"] == sent["id"]
    assert accept["activity"]["result"]["id"] == agreement_id
    assert accept["activity"]["result"]["attributedTo"] == maker
    rows = query(db_url, "SELECT state, channel, quantity FROM orders WHERE uri = $1", agreement_id)
    assert [tuple(r) for r in rows] == [("accepted", "fep", 1)]

    # As a Mastodon user: a direct reply to the listing that says how many.
    dm = peer.control("note", actor="mina", content="<p>주문 2개 부탁드려요</p>", to=maker, inReplyTo=listing,
                      mentions=[maker])
    answer = wait_for(lambda: [r for r in peer.inbox("mina", type="Create", objectType="Note")
                               if r["activity"]["object"].get("inReplyTo") == dm["id"]], what="the answer")[-1]
    reply = answer["activity"]["object"]
    assert "주문이 접수되었습니다" in reply["content"] and "90,000" in reply["content"]
    assert answer["activity"]["actor"] == maker and answer["signatureVerified"]
    rows = query(db_url, "SELECT state, channel, quantity, thread_uri FROM orders WHERE channel = 'dm'")
    assert [tuple(r) for r in rows] == [("accepted", "dm", 2, dm["id"])]
    assert query(db_url, "SELECT stock FROM listings")[0]["stock"] == 2
