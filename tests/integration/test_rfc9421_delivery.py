"""Deliveries answer an RFC 9421 challenge: a 401 with Accept-Signature gets one RFC 9421 retry."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestServer

from fedserver.net.http import HttpClient, Signer
from fedserver.signatures import (
    SignatureError,
    generate_rsa_keypair,
    parse_request_signature,
    verify_parsed,
)


async def _receiver(public_pem: str, seen: list[str], challenge: bool) -> TestServer:
    async def inbox(request: web.Request) -> web.Response:
        body = await request.read()
        parsed = parse_request_signature(request.method, request.raw_path, request.headers, body,
                                         scheme="http", authority=request.host)
        seen.append(parsed.scheme)
        try:
            verify_parsed(parsed, public_pem)
        except SignatureError as exc:
            return web.json_response({"error": str(exc)}, status=401)
        if parsed.scheme != "rfc9421" and challenge:
            return web.json_response({"error": "use RFC 9421"}, status=401, headers={
                "Accept-Signature": 'sig1=("@method" "@target-uri" "@authority" "content-digest");created'})
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/inbox", inbox)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def test_a_401_with_accept_signature_is_answered_with_an_rfc9421_signature():
    private_pem, public_pem = generate_rsa_keypair()
    seen: list[str] = []
    server = await _receiver(public_pem, seen, challenge=True)
    try:
        async with HttpClient(base_url="http://127.0.0.1", allow_private=True) as http:
            result = await http.post_activity(f"http://127.0.0.1:{server.port}/inbox", b'{"type":"Like"}',
                                              signer=Signer("http://127.0.0.1/users/a#main-key", private_pem))
    finally:
        await server.close()
    assert result.status == 202
    assert seen == ["draft-cavage", "rfc9421"]


async def test_a_plain_401_is_not_retried():
    private_pem, _ = generate_rsa_keypair()
    _, other_public = generate_rsa_keypair()
    seen: list[str] = []
    server = await _receiver(other_public, seen, challenge=True)
    try:
        async with HttpClient(base_url="http://127.0.0.1", allow_private=True) as http:
            result = await http.post_activity(f"http://127.0.0.1:{server.port}/inbox", b"{}",
                                              signer=Signer("http://127.0.0.1/users/a#main-key", private_pem))
    finally:
        await server.close()
    assert result.status == 401
    assert seen == ["draft-cavage"]
