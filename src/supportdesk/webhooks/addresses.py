"""Which IP addresses a webhook may be delivered to: globally routable ones only.

Pure (stdlib only), so the whole policy is one table-tested function. An address is
allowed when ``ipaddress`` calls it global and it is not multicast, reserved,
unspecified or site-local. IPv6 forms that carry an IPv4 address to its owner are judged
by the IPv4 address they carry: IPv4-mapped ``::ffff:a.b.c.d``, 6to4 ``2002::/16``,
NAT64's well-known prefix ``64:ff9b::/96`` and Teredo ``2001::/32`` (its server and its
client both). The local-use NAT64 prefix ``64:ff9b:1::/48`` translates to whatever the
local network decides, so it is refused outright.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

IPAddress = IPv4Address | IPv6Address

NAT64_WELL_KNOWN = IPv6Network("64:ff9b::/96")
NAT64_LOCAL_USE = IPv6Network("64:ff9b:1::/48")
UNIQUE_LOCAL = IPv6Network("fc00::/7")
SHARED_ADDRESS_SPACE = IPv4Network("100.64.0.0/10")


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str


ALLOWED = Verdict(True, "globally routable")

# In order: the first that applies names the reason.
_REFUSALS: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("unspecified", lambda ip: ip.is_unspecified),
    ("loopback", lambda ip: ip.is_loopback),
    ("link-local", lambda ip: ip.is_link_local),
    ("multicast", lambda ip: ip.is_multicast),
    ("site-local", lambda ip: isinstance(ip, IPv6Address) and ip.is_site_local),
    ("unique local (fc00::/7)", lambda ip: ip in UNIQUE_LOCAL),
    (
        "shared address space (100.64.0.0/10: carrier-grade NAT, cloud metadata)",
        lambda ip: ip in SHARED_ADDRESS_SPACE,
    ),
    ("private or special-purpose", lambda ip: ip.is_private),
    ("reserved", lambda ip: ip.is_reserved),
    ("not globally routable", lambda ip: not ip.is_global),
)


def _embedded(ip: IPv6Address) -> tuple[str, tuple[IPv4Address, ...]] | None:
    """The IPv4 addresses an IPv6 address delivers to, and the name of the form."""
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", (ip.ipv4_mapped,)
    if ip in NAT64_WELL_KNOWN:
        return "NAT64", (IPv4Address(int(ip) & 0xFFFF_FFFF),)
    if ip.sixtofour is not None:
        return "6to4", (ip.sixtofour,)
    if ip.teredo is not None:
        return "Teredo", ip.teredo
    return None


def judge(address: IPAddress | str) -> Verdict:
    """Whether a webhook may be delivered to ``address``, and why (not)."""
    ip = ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, IPv6Address):
        if ip.scope_id is not None:
            ip = IPv6Address(ip.compressed.split("%", 1)[0])
        if ip in NAT64_LOCAL_USE:
            return Verdict(False, "local-use NAT64 (64:ff9b:1::/48)")
        wrapped = _embedded(ip)
        if wrapped is not None:
            form, inner = wrapped
            for v4 in inner:
                verdict = judge(v4)
                if not verdict.allowed:
                    return Verdict(False, f"the {form} form of {v4}, which is {verdict.reason}")
            return ALLOWED
    for reason, applies in _REFUSALS:
        if applies(ip):
            return Verdict(False, reason)
    return ALLOWED
