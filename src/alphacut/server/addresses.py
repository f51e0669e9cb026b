"""Which IP addresses a server-side fetch may reach: only globally routable ones.

IPv4 addresses hidden inside IPv6 ones (IPv4-mapped, 6to4, Teredo, NAT64) are
unwrapped and judged too, so ``[::ffff:127.0.0.1]`` is the loopback it is.
"""

from __future__ import annotations

import ipaddress

__all__ = ["SPECIAL_PURPOSE", "Address", "Network", "embedded_ipv4", "refusal_reason"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SHARED_SPACE = ipaddress.IPv4Network("100.64.0.0/10")
THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

#: IANA's special-purpose blocks that are not globally reachable (the IPv4 and IPv6
#: Special-Purpose Address Registries), with multicast and the deprecated site-local block:
#: refused by this table whatever the running Python's `ipaddress` knows (3.11.7 counts
#: 192.0.0.0/24 as global, CVE-2024-4032, and checks no site-local).
SPECIAL_PURPOSE: tuple[tuple[Network, str], ...] = tuple(
    (ipaddress.ip_network(block), what)
    for block, what in (
        ("0.0.0.0/8", "in 0.0.0.0/8, 'this network'"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "in the shared address space 100.64.0.0/10"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "an IETF protocol assignment (192.0.0.0/24)"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a deprecated 6to4 relay address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("100::/64", "a discard-only address"),
        ("2001::/23", "an IETF protocol assignment (2001::/23)"),
        ("2001:db8::/32", "a documentation address"),
        ("3fff::/20", "a documentation address"),
        ("5f00::/16", "a segment-routing address"),
        ("fc00::/7", "a unique-local address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
    )
)


def refusal_reason(ip: Address, networks: tuple[Network, ...]) -> str | None:
    """Why `ip` may not be fetched from, or None when it may."""
    embedded = embedded_ipv4(ip)
    if any(ip in net or (embedded is not None and embedded in net) for net in networks):
        return None
    for candidate in (embedded, ip):
        if candidate is None:
            continue
        inside = "" if candidate is ip else f"an IPv6 address embedding {candidate}, "
        for block, what in SPECIAL_PURPOSE:
            if candidate.version == block.version and candidate in block:
                return inside + what
        checks = (
            (candidate.is_unspecified, "an unspecified address"),
            (candidate.is_loopback, "a loopback address"),
            (candidate.is_link_local, "a link-local address"),
            (candidate.is_multicast, "a multicast address"),
            (candidate in SHARED_SPACE, "in the shared address space 100.64.0.0/10"),
            (candidate in THIS_NETWORK, "in 0.0.0.0/8"),
            (candidate.is_private, "a private address"),
            (candidate.is_reserved, "a reserved address"),
            (not candidate.is_global, "not a globally routable address"),
        )
        for refused, what in checks:
            if refused:
                return inside + what
    return None


def embedded_ipv4(ip: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, 6to4, Teredo or NAT64 IPv6 address."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None
