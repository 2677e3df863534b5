"""The pure actor document builder."""

from datetime import datetime, timezone

from activities.actor import Actor, build_actor, build_tombstone, instance_actor_urls, local_actor_urls


def _actor(**overrides) -> Actor:
    urls = local_actor_urls("https://shop.example", "alice")
    fields = dict(
        id=1, uri=urls.id, is_local=True, username="alice", domain="shop.example", actor_type="Person",
        display_name="앨리스", summary="", url=urls.url, inbox_uri=urls.inbox, outbox_uri=urls.outbox,
        shared_inbox_uri=urls.shared_inbox, followers_uri=urls.followers, following_uri=urls.following,
        featured_uri=urls.featured, key_id=urls.key_id, public_key_pem="PEM", manually_approves_followers=False,
        discoverable=True, indexable=True, icon_url=None, icon_media_type=None, image_url=None,
        image_media_type=None, created_at=datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=timezone.utc),
        updated_at=datetime(2026, 1, 2, tzinfo=timezone.utc), deleted_at=None,
    )
    fields.update(overrides)
    return Actor(**fields)


def test_local_urls_follow_the_documented_layout():
    urls = local_actor_urls("http://127.0.0.1:8001", "bob")
    assert urls.id == "http://127.0.0.1:8001/users/bob"
    assert urls.shared_inbox == "http://127.0.0.1:8001/inbox"
    assert urls.key_id == "http://127.0.0.1:8001/users/bob#main-key"
    assert instance_actor_urls("https://x.example").id == "https://x.example/actor"


def test_actor_document_has_what_mastodon_reads():
    doc = build_actor(_actor())
    assert doc["@context"][0] == "https://www.w3.org/ns/activitystreams"
    assert doc["@context"][2]["schema"] == "http://schema.org#"  # Mastodon's (wrong) IRI, on purpose
    assert doc["published"] == "2026-01-02T03:04:05Z"
    assert doc["publicKey"] == {
        "id": "https://shop.example/users/alice#main-key", "owner": doc["id"], "publicKeyPem": "PEM",
    }
    assert doc["endpoints"] == {"sharedInbox": "https://shop.example/inbox"}
    assert "icon" not in doc


def test_icon_is_an_image_object_when_set():
    doc = build_actor(_actor(icon_url="https://shop.example/media/a.png", icon_media_type="image/png"))
    assert doc["icon"] == {"type": "Image", "url": "https://shop.example/media/a.png", "mediaType": "image/png"}


def test_tombstone_keeps_the_former_type():
    doc = build_tombstone("https://shop.example/users/alice", "Person", datetime(2026, 5, 1, tzinfo=timezone.utc))
    assert doc["type"] == "Tombstone" and doc["formerType"] == "Person"
