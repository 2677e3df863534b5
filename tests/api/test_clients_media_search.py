"""Mastodon.py 2.3.3 against real `fedserver run` processes: uploading an image, posting it, and search_v2."""

from __future__ import annotations

import asyncio
import io

import pytest
import requests
from mastodon import Mastodon
from PIL import Image

from tests.api.test_clients import PASSWORD, _start
from tests.support.instance import Instance

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(pg_cluster, tmp_path_factory) -> Instance:
    """One server for the module: each test logs in with an app and token of its own, and none changes alice or
    bob (the resolving test looks up the second instance's alice, so the local account search still finds only
    bob)."""
    db_url = asyncio.run(pg_cluster.create_database())
    inst = _start(db_url, tmp_path_factory.mktemp("media"))
    yield inst
    inst.kill()
    asyncio.run(pg_cluster.drop_database(db_url))


def _logged_in(server: Instance, **kwargs) -> Mastodon:
    client_id, secret = Mastodon.create_app("media", api_base_url=server.base_url)
    app = Mastodon(client_id=client_id, client_secret=secret, api_base_url=server.base_url)
    token = app.log_in("alice", PASSWORD, allow_http=True)
    return Mastodon(access_token=token, api_base_url=server.base_url, **kwargs)


def _png(size=(320, 240)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (180, 90, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def test_mastodon_py_uploads_a_png_and_posts_it(server):
    api = _logged_in(server)
    media = api.media_post(io.BytesIO(_png()), mime_type="image/png", description="분청 찻잔", focus=(0.5, -0.5))
    assert media.url and media.url.startswith(f"{server.base_url}/media/") and media.type == "image"
    assert media.description == "분청 찻잔" and media.meta.focus.x == 0.5 and media.meta.original.width == 320
    assert api.media_update(media, description="분청사기 찻잔").description == "분청사기 찻잔"

    status = api.status_post("새로 구운 찻잔입니다", media_ids=[media])
    [attached] = status.media_attachments
    assert str(attached.id) == str(media.id) and attached.description == "분청사기 찻잔"
    fetched = requests.get(attached.url, timeout=30)
    assert fetched.status_code == 200 and fetched.headers["Content-Type"] == "image/png"
    assert fetched.headers["X-Content-Type-Options"] == "nosniff"
    assert Image.open(io.BytesIO(fetched.content)).size == (320, 240)


def test_mastodon_py_v1_upload_for_servers_it_thinks_are_old(server):
    # With a version below 3.1.4 Mastodon.py uploads to /api/v1/media (mastodon/media.py).
    api = _logged_in(server, mastodon_version="3.0.0", version_check_mode="none")
    media = api.media_post(io.BytesIO(_png((16, 16))), mime_type="image/png")
    assert media.url and media.meta.small.width == 16


def test_mastodon_py_search_v2_finds_korean_posts_accounts_and_tags(server):
    api = _logged_in(server)
    api.status_post("오늘은 도자기 공방에서 물레 수업 #도자기")
    api.status_post("유리 공방 소식")
    found = api.search_v2("도자기 공방", resolve=False)
    assert len(found.statuses) == 1 and "물레 수업" in found.statuses[0].content
    assert [a.acct for a in api.search_v2("bo", result_type="accounts").accounts] == ["bob"]
    assert [t.name for t in api.search_v2("도자", result_type="hashtags").hashtags] == ["도자기"]


def test_mastodon_py_search_v2_resolves_an_account_on_a_second_instance(server, pg_cluster, tmp_path):
    other_db = asyncio.run(pg_cluster.create_database())
    (tmp_path / "peer").mkdir()
    peer = _start(other_db, tmp_path / "peer")
    try:
        api = _logged_in(server)
        handle = f"alice@127.0.0.1:{peer.port}"  # alice: a remote bob would join the module's search for "bo"
        found = api.search_v2(handle, resolve=True, result_type="accounts")  # Mastodon.py sends resolve=1
        assert [a.acct for a in found.accounts] == [handle]
        assert found.accounts[0].display_name == "alice 공방"
    finally:
        peer.kill()
        asyncio.run(pg_cluster.drop_database(other_db))
