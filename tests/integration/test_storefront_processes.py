"""Two real fedserver processes trade: a maker lists on A, a buyer on B orders, both follow every move;
and a maker killed with -9 in the middle of a burst of orders loses and doubles none."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from fedserver.app import build_publisher
from fedserver.config import load_settings
from fedserver.db import init_connection
from storefront import actions
from tests.support.instance import Instance, fetchval, running_instances

pytestmark = pytest.mark.slow

FAST = {"FEDSERVER_FEDERATION__RETRY_DELAY_SCALE": "0.001", "FEDSERVER_REWARDS__CHECKPOINT_INTERVAL": "5",
        "FEDSERVER_FEDERATION__INBOX_LEASE_SECONDS": "3", "FEDSERVER_FEDERATION__DELIVERY_LEASE_SECONDS": "3"}


@pytest.fixture
async def pair(pg_cluster, tmp_path):
    async with running_instances(pg_cluster, tmp_path, "ab", FAST) as instances:
        yield instances


async def _run(x: Instance, *args: str) -> str:
    result = await asyncio.to_thread(x.command, *args)
    assert result.returncode == 0, f"fedserver {' '.join(args)}: {result.stderr}\n{x.log()}"
    return result.stdout.strip().splitlines()[-1]


async def _until(what: str, check, timeout: float = 30, diagnose: tuple[Instance, ...] = ()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    seen = [await fetchval(x, "SELECT array_agg(activity_type || ' ' || state || ' ' || coalesce(last_error, '')) "
                          "FROM inbox_items") for x in diagnose]
    raise AssertionError(f"timed out waiting for {what}; inbox items: {seen}")


async def _state(x: Instance, order: str) -> str | None:
    return await fetchval(x, "SELECT state FROM orders WHERE uri = $1", order)


async def _notices(x: Instance, name: str) -> list[str]:
    rows = await fetchval(x, """SELECT array_agg(o.content ORDER BY n.id) FROM notifications n
                            JOIN objects o ON o.id = n.object_id JOIN actors a ON a.id = n.account_id
                            WHERE a.username = $1 AND a.is_local AND n.type = 'mention'""", name)
    return list(rows or [])


async def test_an_order_between_two_instances_moves_in_step_on_both(pair):
    a, b = pair
    await _run(a, "account", "create", "pottery", "--display-name", "도자기 공방")
    await _run(a, "account", "seller", "pottery", "--business-name", "도자기 공방", "--address", "서울시 종로구 1",
               "--phone", "02-123-4567", "--payment-text", "국민은행 123-45 도자기공방")
    await _run(b, "account", "create", "buyer")
    await _run(b, "follow", "buyer", f"{a.base_url}/users/pottery")
    await _until("the follow", lambda: fetchval(b, "SELECT state = 'accepted' FROM follows"))
    listing = await _run(a, "product", "create", "pottery", "--title", "청자 찻잔", "--price", "38000",
                         "--stock", "3", "--shipping", "3000", "--tag", "수공예", "--no-auto-accept")
    # The follower's server receives the listing Note and keeps what its FEP-0837 fields say.
    await _until("the listing on B", lambda: fetchval(b, "SELECT price = 38000 AND stock = 3 FROM listings l "
                                                     "JOIN objects o ON o.id = l.object_id WHERE o.uri = $1", listing))
    order = await _run(b, "order", "create", "buyer", listing, "--quantity", "2", "--message", "선물용이에요")
    assert order.startswith(f"{b.base_url}/orders/")
    await _until("the order on A", lambda: _state(a, order), diagnose=(a, b))
    assert await fetchval(a, "SELECT total_krw FROM orders") == 76_000 + 3_000
    forbidden = await asyncio.to_thread(a.command, "order", "mark", order, "shipped")
    assert forbidden.returncode != 0 and forbidden.stderr.count("\n") == 1
    assert "the order is requested" in forbidden.stderr and "marked shipped" in forbidden.stderr
    await _run(a, "order", "accept", order)
    await _until("the acceptance on B", lambda: _state_is(b, order, "accepted"))
    assert await fetchval(a, "SELECT stock FROM listings") == 1
    for mark, state in (("paid", "paid"), ("shipped", "shipped"), ("delivered", "delivered")):
        await _run(a, "order", "mark", order, mark)
        await _until(f"{state} on B", lambda s=state: _state_is(b, order, s))
    early = await asyncio.to_thread(a.command, "order", "complete", order)
    assert early.returncode != 0 and "another server" in early.stderr  # only the buyer completes
    await _run(b, "order", "complete", order)
    await _until("completion on A", lambda: _state_is(a, order, "completed"))
    assert await _state(b, order) == "completed"
    for x in (a, b):
        assert await fetchval(x, "SELECT count(*) FROM order_events") == 6
    told_maker, told_buyer = await _notices(a, "pottery"), await _notices(b, "buyer")
    assert "새 주문" in told_maker[0] and "구매가 확정되었습니다" in told_maker[-1] and len(told_maker) == 2
    assert [t for t in told_buyer if "주문이 접수되었습니다" in t and "국민은행" in t and "서울시 종로구" in t]
    assert len(told_buyer) == 4  # accepted, paid, shipped, delivered


async def _state_is(x: Instance, order: str, state: str) -> bool:
    return await _state(x, order) == state


async def test_a_maker_killed_with_9_during_a_burst_loses_and_doubles_no_order(pair):
    a, b = pair
    await _run(a, "account", "create", "pottery")
    listing = await _run(a, "product", "create", "pottery", "--title", "막사발", "--price", "20000", "--stock", "20")
    buyers = [f"buyer{i}" for i in range(5)]
    for name in buyers:
        await _run(b, "account", "create", name)
    settings = load_settings(environ=b.env)
    pool = await asyncpg.create_pool(b.env["FEDSERVER_DATABASE__URL"], min_size=1, max_size=10,
                                     init=init_connection)
    try:
        publisher = build_publisher(settings)
        from fedserver.net.http import HttpClient
        async with HttpClient(settings) as http:
            first = await actions.place_order(pool, publisher, http, buyers[0], listing, 1)  # fetches the listing
        burst = [actions.place_order(pool, publisher, None, buyers[i % 5], listing, 1) for i in range(24)]
        placed = [first, *await asyncio.gather(*burst)]
    finally:
        await pool.close()
    await _until("some orders on A", lambda: fetchval(a, "SELECT count(*) >= 3 FROM orders"), timeout=60)
    a.kill()
    await asyncio.to_thread(a.start)
    uris = {o.uri for o in placed}
    await _until("every order answered on B", lambda: fetchval(
        b, "SELECT count(*) = 25 FROM orders WHERE state IN ('accepted', 'rejected')"), timeout=90, diagnose=(a, b))
    # On A each Offer became one order, or (arriving when too few were left) a Reject and no row.
    stored = await fetchval(a, "SELECT count(*) FROM orders")
    refused = await fetchval(a, """SELECT count(*) FROM activities WHERE activity_type = 'Reject'
                                AND object_uri NOT IN (SELECT uri FROM orders)""")
    assert await fetchval(a, "SELECT count(DISTINCT uri) FROM orders WHERE uri = ANY($1::text[])", list(uris)) == stored
    assert stored + refused == 25 and await fetchval(a, "SELECT count(*) FROM inbox_items") == 25
    assert await fetchval(a, "SELECT count(*) FROM orders WHERE state = 'accepted'") == 20
    assert await fetchval(a, "SELECT stock FROM listings") == 0 and await fetchval(a, "SELECT sum(reserved) FROM orders") == 20
    assert await fetchval(b, "SELECT count(*) FROM orders WHERE state = 'accepted'") == 20
    assert await fetchval(b, "SELECT count(*) FROM orders WHERE state = 'rejected'") == 5
    assert a.starts == 2
