"""The SSRF guard: which webhook URLs may be called, and at which addresses.

A URL is checked in two steps. `check_syntax` needs no DNS: scheme, length, userinfo, port,
and the host, where every numeric trick (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`, a
trailing dot, full-width digits, zone ids) is decoded and refused unless it is a canonical
dotted quad or a bracketed IPv6 literal. `resolve` then looks the name up ONCE and checks
EVERY address; the `Target` it returns pins those addresses, and the sender connects to
them and nowhere else, so a DNS answer that changes after the check (rebinding) is never
used. One refused address refuses the whole name.

`UrlRefused.reason` is one short word: `too_long`, `syntax`, `scheme`, `userinfo`,
`empty_host`, `port`, `host`, `zone_id`, `numeric_host`, `localhost`, `unresolvable`, or an
address class: `unspecified`, `loopback`, `private`, `link_local`, `cgnat`, `multicast`,
`reserved`, `ipv4_mapped`, `ipv4_compatible`, `ipv4_translated`, `nat64`, `6to4`, `teredo`.
Messages name the host, never the path or query (they may carry a secret).
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

from stockflow import StockflowError

__all__ = ["REFUSED", "GetAddrInfo", "IPAddress", "Policy", "Target", "UrlRefused",
           "check_now", "check_syntax", "refusal", "resolve"]

IPAddress = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
# The shape of `loop.getaddrinfo(host, port)`: (family, type, proto, canonname, sockaddr).
GetAddrInfo = Callable[[str, int], Awaitable[Sequence[tuple[int, int, int, str, tuple[Any, ...]]]]]

MAX_URL = 2048
_DEFAULT_PORTS = {"https": 443, "http": 80}

# Refused networks and the class each is refused as; the first match names the class.
REFUSED: tuple[tuple[Network, str], ...] = tuple((ip_network(net), reason) for net, reason in (
    ("0.0.0.0/8", "unspecified"), ("127.0.0.0/8", "loopback"), ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"), ("192.168.0.0/16", "private"), ("169.254.0.0/16", "link_local"),
    ("100.64.0.0/10", "cgnat"), ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),  # with the broadcast address 255.255.255.255
    ("192.0.0.0/24", "reserved"), ("192.0.2.0/24", "reserved"), ("192.88.99.0/24", "reserved"),
    ("198.18.0.0/15", "reserved"), ("198.51.100.0/24", "reserved"), ("203.0.113.0/24", "reserved"),
    ("::/128", "unspecified"), ("::1/128", "loopback"), ("::ffff:0:0/96", "ipv4_mapped"),
    ("::/96", "ipv4_compatible"), ("::ffff:0:0:0/96", "ipv4_translated"),
    ("64:ff9b::/96", "nat64"), ("64:ff9b:1::/48", "nat64"), ("2001::/32", "teredo"),
    ("2002::/16", "6to4"), ("fc00::/7", "private"), ("fec0::/10", "private"),  # ULA, site-local
    ("fe80::/10", "link_local"), ("ff00::/8", "multicast"), ("100::/64", "reserved"),
    ("2001::/23", "reserved"), ("2001:db8::/32", "reserved"), ("3fff::/20", "reserved"),
    ("5f00::/16", "reserved"),
))
_EMBEDS_IPV4 = {"ipv4_mapped", "ipv4_compatible", "ipv4_translated", "nat64"}


class UrlRefused(StockflowError):  # noqa: N818 - a verdict, the name the relay calls
    """A webhook URL that may not be called; `reason` is a short machine word."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Policy:
    """What the guard lets through: https only unless `allow_http`; addresses inside
    `allow_networks` (STOCKFLOW_WEBHOOK_ALLOW_NETWORKS, parsed by the caller) are allowed
    whatever their class."""

    allow_http: bool = False
    allow_networks: tuple[Network, ...] = ()


@dataclass(frozen=True)
class Target:
    """A checked URL. `url` is rebuilt from the checked parts (no userinfo, no fragment,
    the host lower-case ASCII without a trailing dot); `addresses` are the checked
    addresses to connect to, empty only from `check_syntax` for a name not yet resolved."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


def refusal(ip: IPAddress, policy: Policy) -> str | None:
    """Why `ip` may not be called (its class), or None when it may."""
    if any(ip.version == net.version and ip in net for net in policy.allow_networks):
        return None
    for net, reason in REFUSED:
        if ip.version == net.version and ip in net:
            return reason
    return None if ip.is_global else "reserved"


def _describe(host: str, ip: IPAddress, reason: str) -> str:
    text = f"{host} resolves to {ip}" if host != str(ip) else str(ip)
    text += f" is refused: {reason}"
    embedded: IPv4Address | None = None
    if isinstance(ip, IPv6Address):
        if reason in _EMBEDS_IPV4:
            embedded = IPv4Address(int(ip) & 0xFFFFFFFF)
        elif reason == "6to4":
            embedded = ip.sixtofour
        elif reason == "teredo" and ip.teredo:
            embedded = ip.teredo[1]
    if embedded is not None:
        text += f", embedding {embedded} ({refusal(embedded, Policy()) or 'public'})"
    if ip == IPv4Address("169.254.169.254"):
        text += " (cloud metadata)"
    return text


_BAD_CHARS = re.compile(r"[\s\x00-\x1f\x7f-\x9f\\]")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*\Z")
_PORT = re.compile(r"[0-9]{1,5}\Z")
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)\Z")
_NUMERIC_LABEL = re.compile(r"(?:[0-9]+|0x[0-9a-f]*)\Z")


def _ipv4_number(part: str) -> int | None:
    """One part of an inet_aton address: decimal, octal (leading 0) or hex (0x)."""
    if part.startswith("0x"):
        return int(part[2:] or "0", 16) if re.fullmatch(r"[0-9a-f]*", part[2:]) else None
    if re.fullmatch(r"0[0-7]*|[1-9][0-9]*", part):
        return int(part, 8) if part.startswith("0") else int(part)
    return None


def _numeric_host(host: str) -> IPv4Address | None:
    """The address of a host whose last label is a number (the WHATWG rule), None for a
    name. Only a canonical dotted quad is accepted: any other inet_aton form is refused."""
    parts = host.split(".")
    if not _NUMERIC_LABEL.match(parts[-1]):
        return None
    numbers = [_ipv4_number(p) for p in parts] if len(parts) <= 4 else [None]
    if None in numbers:
        raise UrlRefused("numeric_host", f"{host!r} is a numeric host but not an IPv4 address")
    *head, last = [n for n in numbers if n is not None]
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        raise UrlRefused("numeric_host", f"{host!r} is out of range for an IPv4 address")
    value = last + sum(n << (8 * (3 - i)) for i, n in enumerate(head))
    ip = IPv4Address(value)
    if str(ip) != host:
        raise UrlRefused("numeric_host", f"{host!r} is a non-canonical form of {ip} "
                         f"({refusal(ip, Policy()) or 'public'}); write it as {ip}")
    return ip


def _host(raw: str, bracketed: bool) -> tuple[str, IPAddress | None]:
    """The checked host and, for a literal, its address."""
    if bracketed:
        if "%" in raw:
            raise UrlRefused("zone_id", "IPv6 zone ids are not allowed")
        try:
            ip6 = IPv6Address(raw)
        except ValueError:
            raise UrlRefused("host", f"[{raw}] is not an IPv6 address") from None
        return str(ip6), ip6
    if not raw.isascii():
        try:
            raw = raw.encode("idna").decode("ascii")
        except UnicodeError:
            raise UrlRefused("host", "the host is not a valid international name") from None
    host = raw.lower().removesuffix(".")
    if not host:
        raise UrlRefused("empty_host", "the URL has no host")
    ip4 = _numeric_host(host)
    if ip4 is not None:
        return host, ip4
    if len(host) > 253 or not all(_LABEL.match(label) for label in host.split(".")):
        raise UrlRefused("host", f"{host!r} is not a valid host name")
    if host == "localhost" or host.endswith(".localhost"):
        raise UrlRefused("localhost", f"{host} is a local name")
    return host, None


def check_syntax(url: str, policy: Policy) -> Target:
    """Everything that needs no DNS. A literal address is checked here; a name comes back
    with no addresses, for `resolve`."""
    if len(url) > MAX_URL:
        raise UrlRefused("too_long", f"the URL is longer than {MAX_URL} characters")
    if _BAD_CHARS.search(url):
        raise UrlRefused("syntax", "the URL contains whitespace, a control character or '\\'")
    scheme, colon, rest = url.partition(":")
    scheme = scheme.lower()
    if not colon or not _SCHEME.match(scheme):
        raise UrlRefused("syntax", "the URL has no scheme")
    if scheme not in _DEFAULT_PORTS or (scheme == "http" and not policy.allow_http):
        allowed = "https or http" if policy.allow_http else "https"
        raise UrlRefused("scheme", f"the scheme is {scheme}, only {allowed} is allowed")
    if not rest.startswith("//"):
        raise UrlRefused("syntax", "the URL has no '//' authority")
    rest = rest[2:].partition("#")[0]
    authority = re.split(r"[/?]", rest, maxsplit=1)[0]
    path = rest[len(authority):]
    if "@" in authority:
        raise UrlRefused("userinfo", "credentials in the URL (user:pass@) are not allowed")
    bracketed = authority.startswith("[")
    if bracketed:
        raw, bracket, port_text = authority[1:].partition("]")
        if not bracket or (port_text and not port_text.startswith(":")):
            raise UrlRefused("host", "an unterminated or malformed [IPv6] host")
        has_port, port_text = bool(port_text), port_text[1:]
    elif authority.count(":") > 1:
        raise UrlRefused("host", "an IPv6 host must be written in [brackets]")
    else:
        raw, has_port_sep, port_text = authority.partition(":")
        has_port = bool(has_port_sep)
    if not raw:
        raise UrlRefused("empty_host", "the URL has no host")
    port = _DEFAULT_PORTS[scheme]
    if has_port:
        if not _PORT.match(port_text) or not 0 < int(port_text) < 65536:
            raise UrlRefused("port", f"{port_text!r} is not a port (1-65535)")
        port = int(port_text)
    host, literal = _host(raw, bracketed)
    shown = f"[{host}]" if bracketed else host
    shown += "" if port == _DEFAULT_PORTS[scheme] else f":{port}"
    path = path if path.startswith("/") else "/" + path
    target = Target(f"{scheme}://{shown}{path}", scheme, host, port, ())
    if literal is None:
        return target
    why = refusal(literal, policy)
    if why:
        raise UrlRefused(why, _describe(host, literal, why))
    return replace(target, addresses=(literal,))


async def _system_getaddrinfo(
    host: str, port: int,
) -> Sequence[tuple[int, int, int, str, tuple[Any, ...]]]:
    loop = asyncio.get_running_loop()
    return await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)


async def resolve(url: str, policy: Policy, *, getaddrinfo: GetAddrInfo | None = None,
                  timeout: float = 10.0) -> Target:
    """Check `url`, resolve its host once (within `timeout` seconds) and check every
    address; the Target pins them."""
    target = check_syntax(url, policy)
    if target.addresses:
        return target
    try:
        async with asyncio.timeout(timeout):
            infos = await (getaddrinfo or _system_getaddrinfo)(target.host, target.port)
    except (OSError, UnicodeError, TimeoutError) as exc:
        raise UrlRefused("unresolvable", f"{target.host} does not resolve") from exc
    found: dict[IPAddress, None] = {}
    for family, _type, _proto, _name, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            found[ip_address(str(sockaddr[0]).partition("%")[0])] = None
    if not found:
        raise UrlRefused("unresolvable", f"{target.host} has no IPv4 or IPv6 address")
    for ip in found:
        why = refusal(ip, policy)
        if why:
            raise UrlRefused(why, _describe(target.host, ip, why))
    return replace(target, addresses=tuple(found))


def check_now(url: str, policy: Policy, *, getaddrinfo: GetAddrInfo | None = None) -> Target:
    """`resolve` for synchronous callers (the CLI's registration check); not from a loop."""
    return asyncio.run(resolve(url, policy, getaddrinfo=getaddrinfo))
