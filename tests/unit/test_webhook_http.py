"""The guarded sender against real local servers: outcomes, pinning, and a canary that no
refused URL ever reaches."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from stockflow.adapters.ssrf import Policy, Target, UrlRefused, resolve
from stockflow.adapters.webhook_http import Attempt, Session, parse_retry_after, post, session
from tests.unit.test_ssrf import IDEOGRAPHIC_127, PUBLIC4, WIDE_127, FakeDns

HTTP = Policy(allow_http=True)
LOCAL = Policy(allow_http=True, allow_networks=(IPv4Network("127.0.0.0/8"),))
LOOPBACK, SECOND = IPv4Address("127.0.0.1"), IPv4Address("127.0.0.2")


class Rebind(FakeDns):
    """A name whose first answer is `first` and every later one `later`."""

    def __init__(self, first: str, later: str) -> None:
        super().__init__({})
        self.first, self.later = first, later

    async def __call__(
        self, host: str, port: int,
    ) -> Sequence[tuple[int, int, int, str, tuple[Any, ...]]]:
        self.zone = {host: [self.first] if not self.calls else [self.later]}
        return await super().__call__(host, port)


class Server:
    """An aiohttp app that records (path, Host, body, client port) of every request."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes, int]] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        peer = request.transport.get_extra_info("peername")
        self.seen.append((request.path, request.host, await request.read(), int(peer[1])))
        match request.path:
            case "/fail":
                return web.Response(status=500)
            case "/busy":
                return web.Response(status=429, headers={"Retry-After": "120"})
            case "/busy-date":
                later = formatdate(time.time() + 60, usegmt=True)
                return web.Response(status=429, headers={"Retry-After": later})
            case "/redirect":
                return web.Response(status=302, headers={"Location": "/landing"})
            case "/slow":
                await asyncio.sleep(5)
            case "/big":
                return web.Response(body=b"x" * (1 << 20))
            case "/trickle":
                resp = web.StreamResponse()
                await resp.prepare(request)
                for _ in range(100):
                    await resp.write(b"x")
                    await asyncio.sleep(0.05)
                return resp
        return web.Response(status=204)

    def paths(self) -> list[str]:
        return [path for path, *_ in self.seen]


@contextlib.asynccontextmanager
async def serving(server: Server, host: str = "127.0.0.1", port: int = 0,
                  tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    runner = web.AppRunner(server.app, shutdown_timeout=0.1)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, ssl_context=tls).start()
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


def pinned(host: str, port: int, path: str = "/ok", ip: IPv4Address = LOOPBACK,
           scheme: str = "http") -> Target:
    return Target(f"{scheme}://{host}:{port}{path}", scheme, host, port, (ip,))


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(main())


async def _send(http: Session | None, target: Target, timeout: float = 5.0) -> Attempt:
    return await post(http, target, b'{"n":1}', {"Content-Type": "application/json"}, timeout)


def test_outcomes_of_a_local_server() -> None:
    server = Server()

    async def main() -> None:
        async with serving(server) as port, session() as http:
            async def at(path: str) -> Attempt:
                return await _send(http, await resolve(f"http://127.0.0.1:{port}{path}", LOCAL))

            ok = await at("/ok")
            assert (ok.status, ok.error, ok.retry_after, ok.delivered) == (204, None, None, True)
            assert 0 <= ok.elapsed < 5
            assert server.seen[0][1:3] == (f"127.0.0.1:{port}", b'{"n":1}')
            fail = await at("/fail")
            assert (fail.status, fail.delivered, fail.error) == (500, False, None)
            busy = await at("/busy")
            assert (busy.status, busy.retry_after) == (429, 120)
            dated = await at("/busy-date")
            assert dated.status == 429
            assert dated.retry_after is not None
            assert 55 <= dated.retry_after <= 61
            moved = await at("/redirect")
            assert (moved.status, moved.delivered) == (302, False)
            assert "/landing" not in server.paths()

    run(main)


def test_one_total_timeout() -> None:
    server = Server()

    async def main() -> None:
        async with serving(server) as port, session() as http:
            slow = await _send(http, pinned("127.0.0.1", port, "/slow"), timeout=0.3)
            assert (slow.status, slow.error) == (None, "timeout")
            assert 0.3 <= slow.elapsed < 2
            # headers in time, then a body that trickles: the answer counts, the wait is capped
            trickle = await _send(http, pinned("127.0.0.1", port, "/trickle"), timeout=0.5)
            assert (trickle.status, trickle.error) == (200, None)
            assert trickle.elapsed < 2

    run(main)


def test_connection_refused() -> None:
    with socket.socket() as sock:  # a port nobody listens on any more
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    attempt = asyncio.run(_send(None, pinned("127.0.0.1", port)))
    assert (attempt.status, attempt.error) == (None, "refused")


def test_connections_are_reused_and_a_big_body_is_not_read() -> None:
    server = Server()

    async def main() -> None:
        async with serving(server) as port, session() as http:
            for path in ("/ok", "/ok", "/big", "/ok"):
                attempt = await _send(http, pinned("127.0.0.1", port, path))
                assert attempt.delivered
            ports = [peer for *_, peer in server.seen]
            assert ports[0] == ports[1] == ports[2] != ports[3]  # closed after 64 KiB unread

    run(main)


def test_the_pinned_address_is_used_not_dns() -> None:
    server = Server()

    async def main() -> None:
        async with serving(server) as port:
            attempt = await _send(None, pinned("example.invalid", port))
            assert attempt.status == 204
            assert server.seen[0][1] == f"example.invalid:{port}"

    run(main)


def test_concurrent_posts_each_use_their_own_target() -> None:
    first, second = Server(), Server()

    async def main() -> None:
        async with serving(first) as port, serving(second, "127.0.0.2", port), \
                session(limit=4) as http:
            targets = [pinned("a.example", port, ip=LOOPBACK),
                       pinned("b.example", port, ip=SECOND)] * 30
            attempts = await asyncio.gather(*(_send(http, t) for t in targets))
            assert all(a.delivered for a in attempts)
        assert {host for _p, host, *_ in first.seen} == {f"a.example:{port}"}
        assert {host for _p, host, *_ in second.seen} == {f"b.example:{port}"}
        assert len(first.seen) == len(second.seen) == 30

    run(main)


def test_a_target_that_does_not_match_its_url_is_not_sent() -> None:
    good = pinned("127.0.0.1", 9)
    for bad in (Target(good.url, "http", "127.0.0.1", 9, ()),
                Target(good.url, "http", "127.0.0.1", 9, (SECOND,)),
                Target(good.url, "http", "example.invalid", 9, (LOOPBACK,)),
                Target(good.url, "https", "127.0.0.1", 9, (LOOPBACK,))):
        with pytest.raises(ValueError, match="does not match"):
            asyncio.run(_send(None, bad))


def _certificate(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed certificate for `name`, and a client trusting it."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return server, ssl.create_default_context(cafile=str(cert_file))


def test_tls_verifies_the_name_and_sends_it_as_sni(tmp_path: Path) -> None:
    server, (tls, trusting) = Server(), _certificate(tmp_path, "hooks.test")
    sni: list[str | None] = []
    tls.sni_callback = lambda _obj, name, _ctx: sni.append(name)

    async def main() -> None:
        async with serving(server, tls=tls) as port:
            named = pinned("hooks.test", port, scheme="https")
            async with session(ssl=trusting) as http:
                ok = await _send(http, named)
                by_ip = await _send(http, pinned("127.0.0.1", port, scheme="https"))
            assert (ok.status, ok.error) == (204, None)
            assert (by_ip.status, by_ip.error) == (None, "tls")  # the certificate names hooks.test
            untrusted = await _send(None, named)  # the system's CAs do not know it
            assert (untrusted.status, untrusted.error) == (None, "tls")
        assert sni[0] == "hooks.test"
        assert server.seen[0][1] == f"hooks.test:{port}"

    run(main)


def test_canary_no_refused_form_of_loopback_is_ever_sent() -> None:
    connections: list[object] = []

    async def record(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer.get_extra_info("peername"))
        writer.close()

    async def main() -> None:
        canary = await asyncio.start_server(record, "127.0.0.1", 0)
        p = canary.sockets[0].getsockname()[1]
        dns = FakeDns({"loop.test": ["127.0.0.1"], "mixed.test": [PUBLIC4, "127.0.0.1"],
                       "loop6.test": ["::1"], "mapped.test": ["::ffff:127.0.0.1"]})
        forms = [f"http://{host}:{p}/hook" for host in (
            "127.0.0.1", "127.0.0.1.", "2130706433", "0x7f000001", "0x7F.0.0.1", "0177.0.0.1",
            "0177.0.0.01", "127.1", "127.0.1", "0x7f.1", "017700000001", "127.000.000.001",
            WIDE_127, IDEOGRAPHIC_127, "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::127.0.0.1]",
            "[::1]", "[0:0:0:0:0:0:0:1]", "[64:ff9b::127.0.0.1]", "[2002:7f00:1::]", "0",
            "0.0.0.0", "[::]", "localhost",  # noqa: S104 - a URL, not a bind
            "LocalHost.", "hooks.localhost", "loop.test", "mixed.test", "loop6.test",
            "mapped.test", "%31%32%37.0.0.1", "[::1%25lo]")]
        forms += [f"http://u:p@127.0.0.1:{p}/", f"https://127.0.0.1:{p}/", f"ftp://127.0.0.1:{p}/"]
        rebind = Rebind("127.0.0.1", PUBLIC4)
        refused = []
        async with session() as http:
            for url in [*forms, f"http://rebind.test:{p}/"]:
                try:
                    target = await resolve(url, HTTP,
                                           getaddrinfo=rebind if "rebind" in url else dns)
                except UrlRefused as exc:
                    refused.append(exc.reason)
                    continue
                await _send(http, target)  # a leak: the canary would record it
            assert len(refused) == len(forms) + 1
            assert rebind.calls == ["rebind.test"]
            assert connections == []
            # the canary does listen: the same address, allow-listed, reaches it
            reached = await _send(http, await resolve(f"http://127.0.0.1:{p}/", LOCAL))
            assert reached.status is None
        assert len(connections) == 1
        canary.close()
        await canary.wait_closed()

    run(main)


def test_a_rebinding_name_reaches_only_the_checked_address() -> None:
    """First answer 127.0.0.2 (allow-listed), later ones 127.0.0.1 (refused): the request
    goes to 127.0.0.2, the canary on 127.0.0.1 at the same port hears nothing."""
    connections: list[object] = []
    server = Server()

    async def record(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer.get_extra_info("peername"))
        writer.close()

    async def main() -> None:
        canary = await asyncio.start_server(record, "127.0.0.1", 0)
        port = canary.sockets[0].getsockname()[1]
        policy = Policy(allow_http=True, allow_networks=(IPv4Network("127.0.0.2/32"),))
        dns = Rebind("127.0.0.2", "127.0.0.1")
        async with serving(server, "127.0.0.2", port):
            target = await resolve(f"http://rebind.test:{port}/hook", policy, getaddrinfo=dns)
            assert target.addresses == (SECOND,)
            attempt = await _send(None, target)
            assert attempt.status == 204
            with pytest.raises(UrlRefused, match="loopback"):
                await resolve(f"http://rebind.test:{port}/hook", policy, getaddrinfo=dns)
        assert dns.calls == ["rebind.test", "rebind.test"]  # once per check, never by the sender
        assert server.seen[0][:2] == ("/hook", f"rebind.test:{port}")
        assert connections == []
        canary.close()
        await canary.wait_closed()

    run(main)


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), ("", None), ("120", 120), (" 7 ", 7), ("0", 0), ("-5", None), ("1.5", None),
    ("12345678901", None), ("soon", None), ("Thu, 01 Jan 1970 00:00:10 GMT", 0),
    ("Thu, 01 Jan 1970 00:01:40 GMT", 60), ("Thursday, 01-Jan-70 00:01:40 GMT", 60),
    ("Thu Jan  1 00:01:40 1970", 60), ("Thu, 01 Jan 1970 00:01:40 -0000", 60),
])
def test_parse_retry_after(value: str | None, expected: int | None) -> None:
    assert parse_retry_after(value, now=40.0) == expected
