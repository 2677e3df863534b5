"""Media uploads: POST /api/v2/media and /api/v1/media, GET/PUT /api/v1/media/:id, and serving /media/….

Security checklist row I, tests 14 and 39: the type is sniffed from the bytes, every image is
re-encoded (no EXIF GPS survives), names are ours, and every refusal leaves no file and no row.
"""

from __future__ import annotations

import io
import struct
import threading
import zlib

import aiohttp
import pytest
from PIL import ExifTags, Image

from fedserver.config import MediaSettings
from fedserver.media.entity import post_media
from fedserver.repo import media as media_repo
from fedserver.repo import status_views
from tests.api.conftest import mint_token
from tests.api.schemas import MEDIA_ATTACHMENT, UPLOADED_MEDIA, check

GPS_LATITUDE = (37.0, 33.0, 59.5)


def image_bytes(kind: str = "PNG", size=(64, 48), colour=(200, 100, 50), **save) -> bytes:
    """An image of one colour, encoded as `kind`."""
    buffer = io.BytesIO()
    mode = "RGBA" if kind == "PNG" else "RGB"
    Image.new(mode, size, colour).save(buffer, kind, **save)
    return buffer.getvalue()


def jpeg_with_gps(size=(3000, 2000)) -> bytes:
    """A JPEG whose EXIF carries a camera make and a GPS position."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PotteryCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = GPS_LATITUDE
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (126.0, 58.0, 1.0)
    return image_bytes("JPEG", size, (30, 90, 160), exif=exif, comment=b"secret workshop address")


def png_bomb(side: int = 60_000) -> bytes:
    """A valid PNG header claiming side×side pixels with a tiny body: a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 4096))
            + chunk(b"IEND", b""))


def form(data: bytes, filename: str | None = "photo.png", content_type: str = "image/png",
         **fields) -> aiohttp.FormData:
    body = aiohttp.FormData()
    body.add_field("file", data, filename=filename, content_type=content_type)
    for name, value in fields.items():
        body.add_field(name, value)
    return body


async def upload(client, auth, data: bytes, path: str = "/api/v2/media", **kwargs):
    return await client.post(path, data=form(data, **kwargs), headers=auth)


def served_path(url: str) -> str:
    return "/media/" + url.rsplit("/media/", 1)[1]


async def media_rows(pool) -> int:
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM media_attachments")


def media_files(settings) -> list[str]:
    directory = settings.storage.data_dir / "media"
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


async def test_png_upload_round_trip_is_served_as_png_with_safe_headers(client, auth, settings):
    response = await upload(client, auth, image_bytes("PNG", (64, 48)))
    assert response.status == 200, await response.text()
    body = await response.json()
    check(body, UPLOADED_MEDIA)
    assert body["type"] == "image" and body["url"].startswith(f"{settings.base_url}/media/")
    assert body["meta"]["original"] == {"width": 64, "height": 48, "size": "64x48", "aspect": 64 / 48}
    assert body["description"] is None and len(body["blurhash"]) == 36

    served = await client.get(served_path(body["url"]), headers={"Accept": "application/activity+json"})
    assert served.status == 200
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Content-Disposition"] == "inline"
    assert "immutable" in served.headers["Cache-Control"] and "max-age=31536000" in served.headers["Cache-Control"]
    image = Image.open(io.BytesIO(await served.read()))
    assert (image.format, image.size) == ("PNG", (64, 48))
    preview = await client.get(served_path(body["preview_url"]))
    assert preview.status == 200 and preview.headers["Content-Type"] == "image/png"


async def test_jpeg_is_re_encoded_without_exif_gps_and_resized(client, auth):
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the test input has GPS
    body = await (await upload(client, auth, original, filename="IMG_0001.JPG", content_type="image/jpeg")).json()
    assert body["meta"]["original"]["width"] == 1920 and body["meta"]["original"]["height"] == 1280
    assert max(body["meta"]["small"]["width"], body["meta"]["small"]["height"]) == 400

    served = await (await client.get(served_path(body["url"]))).read()
    image = Image.open(io.BytesIO(served))
    assert image.format == "JPEG" and image.size == (1920, 1280)
    assert dict(image.getexif()) == {} and not image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert b"Exif" not in served and b"PotteryCam" not in served and b"secret workshop" not in served


async def test_the_type_comes_from_the_bytes_not_the_name_or_content_type(client, auth):
    webp = image_bytes("WEBP", (40, 40))
    body = await (await upload(client, auth, webp, filename="photo.png", content_type="image/png")).json()
    assert body["url"].endswith(".webp")
    served = await client.get(served_path(body["url"]))
    assert served.headers["Content-Type"] == "image/webp"
    assert Image.open(io.BytesIO(await served.read())).format == "WEBP"


async def test_animated_gif_stays_animated_and_a_still_gif_becomes_png(client, auth):
    frames = [Image.new("RGB", (80, 60), (i * 50, 20, 200 - i * 40)) for i in range(4)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=120, loop=0)
    body = await (await upload(client, auth, buffer.getvalue(), filename="spin.gif")).json()
    assert body["url"].endswith(".gif") and body["preview_url"].endswith(".png")
    served = Image.open(io.BytesIO(await (await client.get(served_path(body["url"]))).read()))
    assert served.format == "GIF" and served.n_frames == 4

    still = await (await upload(client, auth, image_bytes("GIF", (20, 20)), filename="dot.gif")).json()
    assert still["url"].endswith(".png")


async def test_v1_upload_with_description_focus_and_thumbnail(client, auth):
    data = form(image_bytes("JPEG", (300, 200)), filename="upload", content_type="application/octet-stream",
                description="물레로 빚은 찻잔", focus="0.5,-0.25")
    data.add_field("thumbnail", image_bytes("PNG", (50, 50), (0, 255, 0)), filename="thumb.png")
    response = await client.post("/api/v1/media", data=data, headers=auth)
    assert response.status == 200, await response.text()
    body = await response.json()
    check(body, UPLOADED_MEDIA)
    assert body["description"] == "물레로 빚은 찻잔"
    assert body["meta"]["focus"] == {"x": 0.5, "y": -0.25}
    assert body["meta"]["small"]["width"] == 50 and body["preview_url"].endswith(".png")


async def test_get_and_put_are_for_the_owner_of_an_unattached_upload(client, auth, pool, oauth_app, bob):
    body = await (await upload(client, auth, image_bytes())).json()
    path = f"/api/v1/media/{body['id']}"
    fetched = await client.get(path, headers=auth)
    assert fetched.status == 200 and (await fetched.json())["id"] == body["id"]

    changed = await client.put(path, json={"description": "가마에서 막 나온 접시", "focus": "-1,1"}, headers=auth)
    assert changed.status == 200
    result = await changed.json()
    check(result, UPLOADED_MEDIA)
    assert result["description"] == "가마에서 막 나온 접시" and result["meta"]["focus"] == {"x": -1.0, "y": 1.0}
    kept = await (await client.put(path, data={"focus": "0,0"}, headers=auth)).json()
    assert kept["description"] == "가마에서 막 나온 접시"  # absent means unchanged

    bobs = {"Authorization": f"Bearer {await mint_token(pool, oauth_app, bob.id)}"}
    for response in (await client.get(path, headers=bobs), await client.put(path, json={"description": "x"},
                                                                             headers=bobs)):
        assert response.status == 404 and (await response.json()) == {"error": "Record not found"}
    for wrong in ("999999", "abc", "-1"):
        assert (await client.get(f"/api/v1/media/{wrong}", headers=auth)).status == 404

    bad_focus = await client.put(path, json={"focus": "2,0"}, headers=auth)
    assert bad_focus.status == 422 and "focus" in (await bad_focus.json())["error"]
    too_long = await client.put(path, json={"description": "x" * 1501}, headers=auth)
    assert too_long.status == 422


async def test_media_endpoints_need_a_token_with_write_media(client, pool, oauth_app, alice):
    assert (await client.post("/api/v2/media", data=form(image_bytes()))).status == 401
    reader = {"Authorization": f"Bearer {await mint_token(pool, oauth_app, alice.id, scopes=('read',))}"}
    assert (await upload(client, reader, image_bytes())).status == 403
    scoped = {"Authorization": f"Bearer {await mint_token(pool, oauth_app, alice.id, scopes=('write:media',))}"}
    assert (await upload(client, scoped, image_bytes())).status == 200
    assert await media_rows(pool) == 1


def _polyglot(name: str) -> tuple[bytes, str]:
    return image_bytes("JPEG") + b"<html><body><script>alert(document.cookie)</script></body></html>", name


def _jpeg_with_html_comment() -> bytes:
    return image_bytes("JPEG", comment=b"<script>fetch('/api/v1/accounts/verify_credentials')</script>")


REFUSALS = [
    ("plain text", b"just some words, not an image at all", "notes.txt", 422, "not a supported image"),
    ("json", b'{"id": "https://shop.test/users/x", "type": "Person"}', "actor.json", 422, ".json"),
    ("json named png", b'{"id": "https://shop.test/users/x", "type": "Person"}', "actor.png", 422,
     "not a supported image"),
    ("html", b"<!DOCTYPE html><html><script>alert(1)</script></html>", "page.png", 422, "markup"),
    ("svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>', "logo.svg", 422, ".svg"),
    ("svg named png", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "logo.png", 422, "markup"),
    ("polyglot jpeg+html named .html", *_polyglot("photo.html"), 422, ".html"),
    ("polyglot jpeg+html named .jpg", *_polyglot("photo.jpg"), 422, "markup"),
    ("jpeg with html in a comment", _jpeg_with_html_comment(), "photo.jpg", 422, "markup"),
    ("path in the name", image_bytes(), "../../../etc/cron.d/evil.png", 422, "path"),
    ("windows path in the name", image_bytes(), "..\\..\\evil.png", 422, "path"),
    ("decompression bomb", png_bomb(), "bomb.png", 422, "pixels"),
    ("truncated image", image_bytes("PNG", (400, 400), (1, 2, 3))[:300], "cut.png", 422, "image"),
]


@pytest.mark.parametrize("label,data,filename,status,message", REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_refused_uploads_write_no_file_and_no_row(client, auth, pool, settings, label, data, filename,
                                                       status, message):
    response = await upload(client, auth, data, filename=filename, content_type="image/png")
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    assert message in (await response.json())["error"]
    assert await media_rows(pool) == 0 and media_files(settings) == []


async def test_oversize_upload_is_413_without_file_or_row(make_client, settings, auth, pool):
    small = settings.model_copy(update={"media": MediaSettings(max_image_bytes=4096)})
    client = await make_client(small)
    response = await upload(client, auth, image_bytes("PNG", (400, 400)) + b"\0" * 8192)
    assert response.status == 413 and "larger than 4096 bytes" in (await response.json())["error"]
    assert await media_rows(pool) == 0 and media_files(small) == []
    assert (await upload(client, auth, image_bytes("PNG", (8, 8)))).status == 200  # under the cap


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow warns; we refuse
async def test_an_image_larger_than_the_pixel_limit_is_refused(make_client, settings, auth, pool):
    client = await make_client(settings.model_copy(update={"media": MediaSettings(max_image_pixels=10_000)}))
    response = await upload(client, auth, image_bytes("PNG", (200, 100)))
    assert response.status == 422 and "pixels" in (await response.json())["error"]
    assert await media_rows(pool) == 0


@pytest.mark.parametrize("body,ctype", [
    (b'{"file": "iVBORw0KGgo=", "description": "x"}', "application/json"),
    (b"file=iVBORw0KGgo%3D", "application/x-www-form-urlencoded"),
    (image_bytes(), "image/png"),
])
async def test_a_body_that_is_not_multipart_is_refused_with_422(client, auth, pool, settings, body, ctype):
    response = await client.post("/api/v2/media", data=body, headers={**auth, "Content-Type": ctype})
    assert response.status == 422 and "multipart/form-data" in (await response.json())["error"]
    assert await media_rows(pool) == 0 and media_files(settings) == []


async def test_multipart_without_a_file_is_422(client, auth):
    body = aiohttp.FormData(default_to_multipart=True)
    body.add_field("description", "no file here")
    response = await client.post("/api/v2/media", data=body, headers=auth)
    assert response.status == 422 and "file is required" in (await response.json())["error"]


async def test_media_route_serves_only_names_the_server_generated(client, auth):
    body = await (await upload(client, auth, image_bytes())).json()
    name = body["url"].rsplit("/", 1)[1]
    for path in ("/media/x.json", f"/media/{name}.json", f"/media/{name[:-4]}.html", "/media/..%2f..%2fetc%2fpasswd",
                 f"/media/{name.upper()}", "/media/" + "0" * 32 + ".png"):
        response = await client.get(path)
        assert response.status == 404 and response.content_type == "application/json", path


async def test_image_processing_runs_off_the_event_loop_thread(client, auth, monkeypatch):
    from fedserver.media import service

    seen = []
    real = service.process_upload

    def recording(*args, **kwargs):
        seen.append(threading.current_thread() is threading.main_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "process_upload", recording)
    assert (await upload(client, auth, image_bytes())).status == 200
    assert seen == [False]


async def media_of(conn, object_ids: list[int]) -> dict[int, list[dict]]:
    """Each post's MediaAttachments as a page of statuses shows them."""
    details = await status_views.get_status_details(conn, object_ids, None)
    return {i: post_media(d.row.is_local, d.row.data, d.uploads) for i, d in details.items()}


async def test_attach_media_contract(client, auth, pool, alice, bob, oauth_app):
    """attach_media / a page's media (get_status_details, post_media) / attachment_documents, as the statuses
    code uses them."""
    ids = [int((await (await upload(client, auth, image_bytes(size=(30 + i, 20)), description=f"d{i}")).json())["id"])
           for i in range(3)]
    bobs = {"Authorization": f"Bearer {await mint_token(pool, oauth_app, bob.id)}"}
    bob_media = int((await (await upload(client, bobs, image_bytes())).json())["id"])
    async with pool.acquire() as conn:
        post = await conn.fetchval(
            "INSERT INTO objects (uri, object_type, actor_id, is_local) VALUES ('https://shop.test/p/1', 'Note', $1, "
            "true) RETURNING id", alice.id)
        other = await conn.fetchval(
            "INSERT INTO objects (uri, object_type, actor_id, is_local) VALUES ('https://shop.test/p/2', 'Note', $1, "
            "true) RETURNING id", alice.id)
        for wrong, message in (([ids[0], bob_media], "not found"), ([ids[0], 424242], "not found"),
                               ([ids[0], ids[0]], "twice"), ([*ids, ids[0] + 100, ids[0] + 101], "at most 4")):
            with pytest.raises(media_repo.MediaError, match=message):
                async with conn.transaction():
                    await media_repo.attach_media(conn, alice.id, wrong, post)
        assert await conn.fetchval("SELECT count(*) FROM media_attachments WHERE object_id IS NOT NULL") == 0

        async with conn.transaction():
            attached = await media_repo.attach_media(conn, alice.id, [ids[2], ids[0]], post)
        assert [m["id"] for m in attached] == [str(ids[2]), str(ids[0])]
        for entity in attached:
            check(entity, UPLOADED_MEDIA)
        with pytest.raises(media_repo.MediaError, match="already attached"):
            await media_repo.attach_media(conn, alice.id, [ids[0]], other)

        by_object = await media_of(conn, [post, other])
        assert [m["id"] for m in by_object[post]] == [str(ids[2]), str(ids[0])] and by_object[other] == []
    assert (await client.get(f"/api/v1/media/{ids[0]}", headers=auth)).status == 404  # attached: hidden, as Mastodon

    [document, _] = media_repo.attachment_documents(attached)
    assert document["type"] == "Document" and document["mediaType"] == "image/png"
    assert document["url"] == attached[0]["url"] and document["name"] == "d2"
    assert document["blurhash"] == attached[0]["blurhash"] and document["focalPoint"] == [0.0, 0.0]
    assert (document["width"], document["height"]) == (32, 20)


async def test_a_pages_media_shows_a_remote_posts_own_attachments(pool, alice):
    async with pool.acquire() as conn:
        remote = await conn.fetchval(
            """INSERT INTO actors (uri, is_local, username, domain, actor_type, inbox_uri, key_id, public_key_pem)
               VALUES ('https://far.example/users/kim', false, 'kim', 'far.example', 'Person',
                       'https://far.example/inbox', 'https://far.example/users/kim#key', 'pem') RETURNING id""")
        data = {"attachment": [
            {"type": "Document", "mediaType": "image/jpeg", "url": "https://far.example/files/a.jpg",
             "name": "찻잔", "blurhash": "LEHV6nWB2yk8pyo0adR*.7kCMdnj", "width": 800, "height": 600,
             "focalPoint": [0.1, -0.2]},
            {"type": "Document", "mediaType": "video/mp4",
             "url": [{"type": "Link", "href": "https://far.example/v.mp4"}]},
            {"type": "Document", "mediaType": "image/png", "url": "javascript:alert(1)"},
        ]}
        post = await conn.fetchval(
            """INSERT INTO objects (uri, object_type, actor_id, is_local, data)
               VALUES ('https://far.example/notes/1', 'Note', $1, false, $2) RETURNING id""", remote, data)
        [image, video] = (await media_of(conn, [post]))[post]
    check(image, MEDIA_ATTACHMENT)
    check(image["meta"], {"original": UPLOADED_MEDIA["meta"]["original"], "focus": {"x": float, "y": float}})
    assert image["remote_url"] == image["url"] == "https://far.example/files/a.jpg"
    assert image["description"] == "찻잔" and image["meta"]["focus"] == {"x": 0.1, "y": -0.2}
    assert video["type"] == "video" and video["url"] == "https://far.example/v.mp4" and video["preview_url"] is None


async def test_uploads_are_not_bound_by_the_1_mib_request_body_limit(client, auth, settings):
    noise = Image.frombytes("RGB", (800, 800), bytes((i * 7919) % 251 for i in range(800 * 800 * 3)))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG", compress_level=0)
    assert len(buffer.getvalue()) > settings.server.client_max_size
    response = await upload(client, auth, buffer.getvalue())
    assert response.status == 200, await response.text()
    assert (await response.json())["meta"]["original"]["width"] == 800
