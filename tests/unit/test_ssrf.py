"""The SSRF guard: a corpus of refused URLs, each with its reason; what passes; pinning."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockflow.adapters.ssrf import (
    REFUSED,
    GetAddrInfo,
    Policy,
    Target,
    UrlRefused,
    check_now,
    check_syntax,
    refusal,
    resolve,
)

HTTP = Policy(allow_http=True)
LOCAL = Policy(allow_http=True, allow_networks=(IPv4Network("127.0.0.0/8"),))
PUBLIC4, PUBLIC6 = "93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"
# Hosts that IDNA maps onto ASCII ones: full-width letters and digits, ideographic dots.
WIDE_LOCALHOST = "".join(chr(ord(c) + 0xFEE0) for c in "localhost")
WIDE_127 = "\uff11\uff12\uff17.0.0.1"
IDEOGRAPHIC_127 = "127\u30020\u30020\u30021"

# Names only this fake DNS knows; every other name does not resolve.
ZONE = {
    "hooks.example.com": [PUBLIC4, PUBLIC6],
    "xn--bcher-kva.example": [PUBLIC4],
    "internal.example": ["10.1.2.3"],
    "metadata.example": ["169.254.169.254"],
    "loop.example": ["127.0.0.1"],
    "loop6.example": ["::1"],
    "mixed.example": [PUBLIC4, "10.0.0.7"],
    "mixed6.example": [PUBLIC6, "fd00::1"],
    "scoped.example": ["fe80::1%eth0"],
    "cgnat.example": ["100.64.0.1"],
    "mapped.example": ["::ffff:10.0.0.1"],
    "nothing.example": [],
}


class FakeDns:
    """A getaddrinfo that answers from a zone and counts its calls."""

    def __init__(self, zone: dict[str, list[str]]) -> None:
        self.zone = zone
        self.calls: list[str] = []

    async def __call__(
        self, host: str, port: int,
    ) -> Sequence[tuple[int, int, int, str, tuple[Any, ...]]]:
        self.calls.append(host)
        if host not in self.zone:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0)) if ":" in a
                else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in self.zone[host]]


def _resolve(url: str, policy: Policy = HTTP, dns: GetAddrInfo | None = None) -> Target:
    return asyncio.run(resolve(url, policy, getaddrinfo=dns or FakeDns(ZONE)))


REFUSED_URLS = [
    # scheme, shape, length
    ("ftp://hooks.example.com/", "scheme"), ("file:///etc/passwd", "scheme"),
    ("gopher://hooks.example.com/", "scheme"), ("javascript:alert(1)", "scheme"),
    ("hooks.example.com/x", "syntax"), ("https:hooks.example.com", "syntax"),
    ("https:/hooks.example.com", "syntax"), ("https://hooks.example.com/a b", "syntax"),
    ("https://hooks.example.com\\@10.0.0.1/", "syntax"), ("https://hooks.exa\nmple.com/", "syntax"),
    ("https://hooks.example.com/" + "a" * 2030, "too_long"),
    # userinfo, host, port
    ("https://user:pass@hooks.example.com/", "userinfo"),
    ("https://user@hooks.example.com/", "userinfo"),
    ("https://hooks.example.com@127.0.0.1/", "userinfo"),
    ("https://@hooks.example.com/", "userinfo"),
    ("https:///hooks", "empty_host"), ("https://:443/", "empty_host"),
    ("https://[]/", "empty_host"),
    ("https://./", "empty_host"), ("https://hooks.example.com:0/", "port"),
    ("https://hooks.example.com:65536/", "port"), ("https://hooks.example.com:/", "port"),
    ("https://hooks.example.com:+443/", "port"), ("https://hooks.example.com:44a/", "port"),
    ("https://hooks..example.com/", "host"), ("https://hooks.example.com../", "host"),
    ("https://-hooks.example.com/", "host"), ("https://%6c%6fcalhost/", "host"),
    ("https://::1/", "host"), ("https://[::1/", "host"), ("https://[v1.fe]/", "host"),
    ("https://[::1]x/", "host"), ("https://" + "a" * 64 + ".example/", "host"),
    ("https://[fe80::1%25eth0]/", "zone_id"), ("https://[fe80::1%eth0]/", "zone_id"),
    ("https://localhost/", "localhost"), ("https://LOCALHOST./", "localhost"),
    ("https://api.localhost/", "localhost"), (f"https://{WIDE_LOCALHOST}/", "localhost"),
    # numeric host tricks
    ("http://2130706433/", "numeric_host"), ("http://0x7f000001/", "numeric_host"),
    ("http://0x7f.0.0.1/", "numeric_host"), ("http://0177.0.0.1/", "numeric_host"),
    ("http://0177.1/", "numeric_host"), ("http://127.1/", "numeric_host"),
    ("http://10.1/", "numeric_host"), ("http://127.0.1/", "numeric_host"),
    ("http://0x7f.1./", "numeric_host"), ("http://0/", "numeric_host"),
    ("http://0x0a.0.0.1/", "numeric_host"), ("http://127.000.000.001/", "numeric_host"),
    ("http://0xA9FEA9FE/", "numeric_host"), ("http://3232235521/", "numeric_host"),
    ("http://134744072/", "numeric_host"),  # 8.8.8.8: public, but not canonical
    ("http://999.1.1.1/", "numeric_host"), ("http://1.2.3.4.5/", "numeric_host"),
    ("http://08.0.0.1/", "numeric_host"), ("http://0x7g.1/", "numeric_host"),
    ("http://4294967296/", "numeric_host"), ("https://%31%32%37.0.0.1/", "numeric_host"),
    ("http://hooks.example.123/", "numeric_host"),
    # literal addresses, by class (one trailing dot is the same host)
    ("http://127.0.0.1/", "loopback"), ("http://127.255.255.254:8080/", "loopback"),
    ("http://127.0.0.1./", "loopback"), (f"https://{WIDE_127}/", "loopback"),
    (f"https://{IDEOGRAPHIC_127}/", "loopback"), ("https://[::1]/", "loopback"),
    ("https://[0:0:0:0:0:0:0:1]/", "loopback"), ("https://0.0.0.0/", "unspecified"),
    ("https://0.1.2.3/", "unspecified"), ("https://[::]/", "unspecified"),
    ("https://10.0.0.1/", "private"), ("https://172.16.0.1/", "private"),
    ("https://172.31.255.255/", "private"), ("https://192.168.1.1/", "private"),
    ("https://[fc00::1]/", "private"), ("https://[fd12:3456::1]/", "private"),
    ("https://[fec0::1]/", "private"), ("https://169.254.169.254/latest/meta-data/", "link_local"),
    ("https://169.254.0.1/", "link_local"), ("https://[fe80::1]/", "link_local"),
    ("https://100.64.0.1/", "cgnat"), ("https://100.127.255.254/", "cgnat"),
    ("https://224.0.0.1/", "multicast"), ("https://239.255.255.250/", "multicast"),
    ("https://[ff02::1]/", "multicast"), ("https://[ff0e::1]/", "multicast"),
    ("https://240.0.0.1/", "reserved"), ("https://255.255.255.255/", "reserved"),
    ("https://192.0.0.8/", "reserved"), ("https://192.0.2.1/", "reserved"),
    ("https://198.18.0.1/", "reserved"), ("https://198.19.255.1/", "reserved"),
    ("https://198.51.100.7/", "reserved"), ("https://203.0.113.9/", "reserved"),
    ("https://192.88.99.1/", "reserved"), ("https://[2001:db8::1]/", "reserved"),
    ("https://[100::1]/", "reserved"), ("https://[2001:10::1]/", "reserved"),
    ("https://[3fff::1]/", "reserved"), ("https://[5f00::1]/", "reserved"),
    # IPv6 forms that carry an IPv4 address: refused whatever that address is
    ("https://[::ffff:127.0.0.1]/", "ipv4_mapped"), ("https://[::ffff:7f00:1]/", "ipv4_mapped"),
    ("https://[::ffff:169.254.169.254]/", "ipv4_mapped"),
    ("https://[::ffff:8.8.8.8]/", "ipv4_mapped"),
    ("https://[::127.0.0.1]/", "ipv4_compatible"), ("https://[::8.8.8.8]/", "ipv4_compatible"),
    ("https://[::ffff:0:127.0.0.1]/", "ipv4_translated"),
    ("https://[64:ff9b::127.0.0.1]/", "nat64"),
    ("https://[64:ff9b::a9fe:a9fe]/", "nat64"), ("https://[64:ff9b:1::a00:1]/", "nat64"),
    ("https://[2002:7f00:1::1]/", "6to4"), ("https://[2002:0808:0808::1]/", "6to4"),
    ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "teredo"),
    # names whose addresses are refused (one bad address refuses the name), or none
    ("https://internal.example/", "private"), ("https://metadata.example/", "link_local"),
    ("https://loop.example/", "loopback"), ("https://loop6.example/", "loopback"),
    ("https://mixed.example/", "private"), ("https://mixed6.example/", "private"),
    ("https://scoped.example/", "link_local"), ("https://cgnat.example/", "cgnat"),
    ("https://mapped.example/", "ipv4_mapped"), ("https://nowhere.example/", "unresolvable"),
    ("https://nothing.example/", "unresolvable"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED_URLS)
def test_refused(url: str, reason: str) -> None:
    dns = FakeDns(ZONE)
    with pytest.raises(UrlRefused) as refused:
        _resolve(url, HTTP, dns)
    assert refused.value.reason == reason, str(refused.value)
    # only the names at the end of the corpus reach DNS, each once; the rest need none
    assert dns.calls == [h for h in (*ZONE, "nowhere.example") if url == f"https://{h}/"]


def test_the_corpus_covers_every_class() -> None:
    assert len(REFUSED_URLS) >= 60
    covered = {reason for _url, reason in REFUSED_URLS}
    assert {reason for _net, reason in REFUSED} <= covered


def test_http_needs_the_flag() -> None:
    with pytest.raises(UrlRefused, match="only https") as refused:
        _resolve(f"http://{PUBLIC4}/", Policy())
    assert refused.value.reason == "scheme"
    assert _resolve(f"http://{PUBLIC4}/", HTTP).scheme == "http"


def test_messages_never_carry_the_path_or_query() -> None:
    for url in ("https://10.0.0.1/hook/s3cr3t?token=s3cr3t", "https://u:s3cr3t@x.example/",
                "https://loop.example/s3cr3t", "ftp://x.example/s3cr3t"):
        with pytest.raises(UrlRefused) as refused:
            _resolve(url)
        assert "s3cr3t" not in str(refused.value)


@pytest.mark.parametrize(("url", "expected"), [
    (f"https://{PUBLIC4}/hook", f"https://{PUBLIC4}/hook"),
    ("https://8.8.8.8:8443/a?b=1#frag", "https://8.8.8.8:8443/a?b=1"),
    ("HTTPS://1.1.1.1:443", "https://1.1.1.1/"),
    ("https://[2001:4860:4860::8888]/x", "https://[2001:4860:4860::8888]/x"),
    ("https://[2606:4700:4700:0:0:0:0:1111]:8443?q", "https://[2606:4700:4700::1111]:8443/?q"),
])
def test_public_literals_pass_without_dns(url: str, expected: str) -> None:
    dns = FakeDns({})
    target = _resolve(url, Policy(), dns)
    assert target.url == expected
    assert target.addresses == (ip_address(target.host),)
    assert dns.calls == []


@pytest.mark.parametrize("url", ["https://hooks.example.com/in", "https://Hooks.Example.COM./in",
                                 "https://hooks.example.com:443/in"])
def test_a_public_name_pins_every_address(url: str) -> None:
    dns = FakeDns(ZONE)
    target = _resolve(url, Policy(), dns)
    assert target == Target("https://hooks.example.com/in", "https", "hooks.example.com", 443,
                            (IPv4Address(PUBLIC4), IPv6Address(PUBLIC6)))
    assert dns.calls == ["hooks.example.com"]


def test_an_international_name_is_resolved_as_punycode() -> None:
    target = _resolve("https://bücher.example:8443/", Policy())
    assert (target.host, target.url) == ("xn--bcher-kva.example", "https://xn--bcher-kva.example:8443/")


def test_check_syntax_leaves_names_to_resolve() -> None:
    assert check_syntax("https://hooks.example.com/x", Policy()).addresses == ()


def test_the_allow_list_overrides_only_inside_it() -> None:
    assert _resolve("http://127.0.0.1:8080/x", LOCAL).addresses == (IPv4Address("127.0.0.1"),)
    assert _resolve("http://loop.example/", LOCAL).addresses == (IPv4Address("127.0.0.1"),)
    for url, reason in [("http://[::1]/", "loopback"), ("http://10.0.0.1/", "private"),
                        ("http://[::ffff:127.0.0.1]/", "ipv4_mapped"),
                        ("http://2130706433/", "numeric_host"), ("http://localhost/", "localhost")]:
        with pytest.raises(UrlRefused) as refused:
            _resolve(url, LOCAL)
        assert refused.value.reason == reason


class Rebinding(FakeDns):
    """First a public address, then loopback ever after."""

    async def __call__(
        self, host: str, port: int,
    ) -> Sequence[tuple[int, int, int, str, tuple[Any, ...]]]:
        self.zone = {host: [PUBLIC4] if not self.calls else ["127.0.0.1"]}
        return await super().__call__(host, port)


def test_dns_rebinding_is_resolved_once_and_pinned() -> None:
    dns = Rebinding({})
    target = _resolve("https://rebind.example/hook", Policy(), dns)
    assert target.addresses == (IPv4Address(PUBLIC4),)
    assert dns.calls == ["rebind.example"]
    with pytest.raises(UrlRefused) as refused:  # a second check sees the new answer
        _resolve("https://rebind.example/hook", Policy(), dns)
    assert refused.value.reason == "loopback"


def test_check_now_is_the_synchronous_resolve() -> None:
    assert check_now("https://hooks.example.com/", Policy(), getaddrinfo=FakeDns(ZONE)).port == 443
    with pytest.raises(UrlRefused):
        check_now("https://internal.example/", Policy(), getaddrinfo=FakeDns(ZONE))


# Properties (derandomized: the same examples every run) -----------------------------------

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True)

def _inside(net: IPv4Network | IPv6Network, offset: int) -> IPv4Address | IPv6Address:
    return net[offset % net.num_addresses]


@PROPERTY
@given(st.sampled_from(REFUSED), st.integers(min_value=0))
def test_any_address_inside_a_refused_network_is_refused(
    entry: tuple[IPv4Network | IPv6Network, str], offset: int,
) -> None:
    net, _reason = entry
    assert refusal(_inside(net, offset), Policy()) is not None


@PROPERTY
@given(st.sampled_from(REFUSED), st.integers(min_value=0))
def test_any_address_inside_the_allow_list_is_allowed(
    entry: tuple[IPv4Network | IPv6Network, str], offset: int,
) -> None:
    net, _reason = entry
    assert refusal(_inside(net, offset), Policy(allow_networks=(net,))) is None


@PROPERTY
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_ipv6_forms_of_any_ipv4_address_are_refused(value: int) -> None:
    for wrapped in (0xFFFF << 32 | value, value if value > 1 else value + 2,
                    0x64FF9B << 96 | value, 0x2002 << 112 | value << 80):
        assert refusal(IPv6Address(wrapped), Policy()) is not None


def _form(value: int, parts: int, bases: list[str]) -> str:
    """`value` as an inet_aton string of `parts` parts, each written in its base."""
    sizes = [1] * (parts - 1) + [5 - parts]
    numbers, shift = [], 32
    for size in sizes:
        shift -= 8 * size
        numbers.append(value >> shift & (256**size - 1))
    write: dict[str, Callable[[int], str]] = {
        "dec": str, "oct": lambda n: f"0{n:o}", "hex": lambda n: f"0x{n:x}"}
    return ".".join(write[b](n) for n, b in zip(numbers, bases, strict=False))


@PROPERTY
@given(st.integers(min_value=0, max_value=2**32 - 1), st.integers(min_value=1, max_value=4),
       st.lists(st.sampled_from(["dec", "oct", "hex"]), min_size=4, max_size=4))
def test_every_inet_aton_form_is_decoded_and_refused_unless_canonical(
    value: int, parts: int, bases: list[str],
) -> None:
    host, ip = _form(value, parts, bases), IPv4Address(value)
    assert socket.inet_aton(host) == ip.packed  # the form means what the C library reads
    if host == str(ip):
        why = refusal(ip, HTTP)
        if why is None:
            assert check_syntax(f"http://{host}/", HTTP).addresses == (ip,)
        else:
            with pytest.raises(UrlRefused, match=why):
                check_syntax(f"http://{host}/", HTTP)
        return
    with pytest.raises(UrlRefused) as refused:
        check_syntax(f"http://{host}./", HTTP)
    assert refused.value.reason == "numeric_host"
    assert f"form of {ip} " in str(refused.value)
