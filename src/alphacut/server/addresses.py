"""Which IP addresses a server-side fetch may reach: only globally routable ones.

IPv4 addresses hidden inside IPv6 ones (IPv4-mapped, 6to4, Teredo, NAT64) are
unwrapped and judged too, so ``[::ffff:127.0.0.1]`` is the loopback it is.
"""

from __future__ import annotations

import ipaddress

__all__ = ["Address", "Network", "embedded_ipv4", "refusal_reason"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SHARED_SPACE = ipaddress.IPv4Network("100.64.0.0/10")
THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def refusal_reason(ip: Address, networks: tuple[Network, ...]) -> str | None:
    """Why `ip` may not be fetched from, or None when it may."""
    embedded = embedded_ipv4(ip)
    if any(ip in net or (embedded is not None and embedded in net) for net in networks):
        return None
    for candidate in (embedded, ip):
        if candidate is None:
            continue
        inside = "" if candidate is ip else f"an IPv6 address embedding {candidate}, "
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
