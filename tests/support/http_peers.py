"""Loopback peers for outbound-HTTP tests: small aiohttp servers, fake DNS, a connection counter, a test CA."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import ipaddress
import json
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from yarl import URL

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Answer = list[tuple[str, int]]
ACTIVITY_JSON = "application/activity+json"


@dataclass
class Peer:
    """A running loopback server: its root URL and the requests it received, by path."""

    root: URL
    hits: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def port(self) -> int:
        """The listening port."""
        return self.root.port  # type: ignore[return-value]

    def url(self, path: str) -> str:
        """Absolute URL of a path on this server (http or https, 127.0.0.1); usable after it stops."""
        return str(self.root.join(URL(path)))


@contextlib.asynccontextmanager
async def serve(routes: dict[str, Handler], *, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Peer]:
    """Serve `routes` (path -> handler, any method) on 127.0.0.1, port 0."""
    hits: collections.Counter[str] = collections.Counter()

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        hits[request.path] += 1
        return await handler(request)

    app = web.Application(middlewares=[count])
    for path, handler in routes.items():
        app.router.add_route("*", path, handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=ssl_context)
    try:
        yield Peer(server.make_url("/"), hits)
    finally:
        await server.close()


def document(request: web.Request, content_type: str = ACTIVITY_JSON, **fields: object) -> web.Response:
    """An ActivityPub document whose id is the URL it is served at, unless `id` is given."""
    doc = {"@context": "https://www.w3.org/ns/activitystreams", "id": str(request.url), "type": "Note", **fields}
    return web.Response(body=json.dumps(doc).encode(), headers={"Content-Type": content_type})


async def serves_document(request: web.Request) -> web.Response:
    """Handler: a Note whose id is its URL."""
    return document(request)


def redirect(location: str) -> Handler:
    """Handler: 302 to `location`."""
    async def handler(request: web.Request) -> web.Response:
        raise web.HTTPFound(location)
    return handler


def streaming_handler(state: dict, *, declared: int | None = None, total: int = 200 * 1024 * 1024) -> Handler:
    """Handler: `total` bytes of filler (chunked unless a Content-Length is `declared`).

    state["written"] counts what the peer managed to send; state["done"] is set when it stops.
    """
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": ACTIVITY_JSON})
        if declared is None:
            response.enable_chunked_encoding()
        else:
            response.content_length = declared
        await response.prepare(request)
        chunk = b" " * (64 * 1024)
        try:
            while state["written"] < total:
                await response.write(chunk)
                state["written"] += len(chunk)
        except ConnectionError:
            pass  # the client hung up, as it should
        finally:
            state["done"].set()
        return response
    return handler


class ConnectionCounter:
    """A raw TCP listener on 127.0.0.1 that counts accepted connections and closes them."""

    def __init__(self) -> None:
        self.count = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ConnectionCounter:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.count += 1
        writer.close()


class FakeResolver(AbstractResolver):
    """DNS from a table: name -> answers, one per call (the last one repeats); records every call."""

    def __init__(self, table: dict[str, list[Answer]]) -> None:
        self._table = {name: list(answers) for name, answers in table.items()}
        self.calls: list[str] = []

    @classmethod
    def fixed(cls, name: str, ip: str, port: int) -> FakeResolver:
        """Always answer `name` with one address, whatever port was asked for."""
        return cls({name: [[(ip, port)]]})

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
    ) -> list[ResolveResult]:
        self.calls.append(host)
        answers = self._table.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: no such test host")
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return [_result(host, ip, answer_port) for ip, answer_port in answer]

    async def close(self) -> None:
        pass


class RoutingResolver(AbstractResolver):
    """Send some names to their own resolver and the rest to a default one."""

    def __init__(self, routes: dict[str, AbstractResolver], default: AbstractResolver) -> None:
        self._routes = routes
        self._default = default

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
    ) -> list[ResolveResult]:
        return await self._routes.get(host, self._default).resolve(host, port, family)

    async def close(self) -> None:
        pass


def _result(name: str, ip: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ipaddress.ip_address(ip).version == 6 else socket.AF_INET
    return ResolveResult(hostname=name, host=ip, port=port, family=family, proto=0,
                         flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)


@dataclass(frozen=True)
class TestTLS:
    """A throwaway CA and a server certificate for some names, as ready-made SSL contexts."""

    __test__ = False  # not a pytest class
    server: ssl.SSLContext
    client: ssl.SSLContext


def make_tls(names: list[str]) -> TestTLS:
    """Issue a server certificate for `names` (and 127.0.0.1) from a fresh CA."""
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedserver test CA")])
    ca = (_builder(ca_name, ca_name, ca_key.public_key())
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(_usage(cert_sign=True), critical=True)
          .sign(ca_key, hashes.SHA256()))
    sans = [x509.DNSName(name) for name in names] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    leaf = (_builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]), ca_name, leaf_key.public_key())
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode("ascii"))
    return TestTLS(server=server, client=client)


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1)))


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
        encipher_only=False, decipher_only=False)


def host_of(url: str) -> str:
    """The host:port of a URL, as a handle's host part."""
    return URL(url).host_port_subcomponent or ""
