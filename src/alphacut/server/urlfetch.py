"""Fetching an image from a URL without turning the server into an SSRF proxy.

`fetch_image_bytes` backs the optional ``GET /api/remove?url=...`` (off by default).
Every hop, the first request and each redirect alike, goes through the same rules:

1. **scheme**: only the schemes in `FetchPolicy.allowed_schemes` (http and https at most);
2. **credentials**: no user name or password in the URL;
3. **host**: a host name or IP literal must be present and well formed;
4. **address**: the host is resolved once per hop, and *every* address it resolves to must be
   globally routable (not private, loopback, link-local, multicast, reserved, unspecified,
   shared 100.64.0.0/10 or 0.0.0.0/8; IPv4 embedded in IPv6 is unwrapped and checked too)
   unless it lies inside one of `FetchPolicy.allow_networks`;
5. **pinning**: the socket connects to one of exactly those validated addresses, never to the
   name, so DNS rebinding between check and connect cannot swap in an internal address. TLS
   still verifies the certificate against the original host name, and the request carries
   the original ``Host`` header;
6. **redirects**: 301, 302, 303, 307 and 308 are followed by hand, at most
   `FetchPolicy.max_redirects` times, and each target is checked from rule 1 again;
7. **size**: a ``Content-Length`` over `FetchPolicy.max_bytes` is refused before any body is
   read, and a body without one is counted while read, never past ``max_bytes + 1`` bytes;
8. **time**: one deadline of `FetchPolicy.timeout_s` seconds covers resolution, connects, TLS
   and all reads of all hops; a watchdog shuts the socket down when it passes, so a server
   that drips one byte at a time cannot stretch the fetch either.

Errors, as in `alphacut.errors`::

    InputError
    ├── UrlRefused          HTTP 403   a rule above refused the URL (nothing was fetched)
    ├── UrlFetchFailed      HTTP 502   unresolvable host, network or TLS failure, non-2xx answer
    │   └── UrlFetchTimeout HTTP 504   the deadline passed
    └── ImageTooLarge       HTTP 413   the body is over max_bytes

Messages name the rule and the host, never the whole URL, so credentials are not echoed.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import quote, urljoin, urlsplit

from .. import __version__
from ..errors import ImageTooLarge, InputError, OptionsError
from .addresses import Address, Network, refusal_reason

__all__ = [
    "FetchPolicy",
    "UrlFetchFailed",
    "UrlFetchTimeout",
    "UrlRefused",
    "fetch_image_bytes",
]

_log = logging.getLogger(__name__)

_Address = Address
_Network = Network
# (family, type, proto, canonname, sockaddr) as socket.getaddrinfo returns it.
_AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOSTNAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?\.?")
_CHUNK = 64 * 1024
# Characters left as they are in the request target; everything else is percent-encoded.
_TARGET_SAFE = "!$%&'()*+,/:;=?@[]~"


class UrlRefused(InputError):
    """A fetch rule refused the URL before anything was fetched from it."""

    http_status = 403


class UrlFetchFailed(InputError):
    """The URL was allowed but fetching it failed: network, TLS, or a non-2xx answer."""

    http_status = 502


class UrlFetchTimeout(UrlFetchFailed):
    """The whole fetch, all hops together, ran past `FetchPolicy.timeout_s`."""

    http_status = 504


@dataclass(frozen=True, kw_only=True)
class FetchPolicy:
    """Limits for one URL fetch.

    `max_bytes` bounds the body in bytes; `timeout_s` is the total budget in seconds for
    resolution, connects and reads over all hops; `max_redirects` is how many redirects are
    followed (0: none); `allowed_schemes` is a subset of http and https; `allow_networks`
    lists CIDRs (``"10.0.0.0/8"``, ``"127.0.0.2/32"``) whose addresses are allowed even though
    they are not global, for tests and trusted intranets.
    """

    max_bytes: int = 25 * 1024 * 1024
    timeout_s: float = 10.0
    max_redirects: int = 3
    allowed_schemes: tuple[str, ...] = ("http", "https")
    allow_networks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_bytes < 1:
            raise OptionsError(f"max_bytes must be at least 1, not {self.max_bytes}")
        if not self.timeout_s > 0:
            raise OptionsError(f"timeout_s must be above 0, not {self.timeout_s}")
        if self.max_redirects < 0:
            raise OptionsError(f"max_redirects must be 0 or more, not {self.max_redirects}")
        unknown = sorted(set(self.allowed_schemes) - set(_DEFAULT_PORTS))
        if unknown:
            raise OptionsError(f"allowed_schemes may hold only http and https, not {unknown}")
        self.networks()

    def networks(self) -> tuple[_Network, ...]:
        """`allow_networks` parsed; host bits are ignored (``10.1.2.3/8`` is ``10.0.0.0/8``)."""
        try:
            return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in self.allow_networks)
        except ValueError as exc:
            raise OptionsError(f"allow_networks: {exc}") from exc


def fetch_image_bytes(
    url: str, policy: FetchPolicy, *, ssl_context: ssl.SSLContext | None = None
) -> bytes:
    """GET `url` under `policy` and return the body of the final 2xx answer.

    `ssl_context` replaces ``ssl.create_default_context()`` for https, for a private CA or a
    test certificate; it should keep certificate and host name checks on. Raises `UrlRefused`,
    `UrlFetchFailed` (`UrlFetchTimeout`) or `ImageTooLarge`, as the module docstring tells.
    """
    deadline = _Deadline(policy.timeout_s)
    watchdog = _Watchdog(policy.timeout_s)
    fetcher = _Fetcher(policy, policy.networks(), deadline, watchdog, ssl_context)
    watchdog.start()
    try:
        current = url
        for hop in range(policy.max_redirects + 1):
            answer = fetcher.fetch_once(current, hop)
            if isinstance(answer, bytes):
                return answer
            current = answer.location
        raise UrlRefused(
            f"refused by the redirect rule: more than {policy.max_redirects} redirect(s)"
        )
    finally:
        watchdog.stop()


class _Target(NamedTuple):
    scheme: str
    host: str  # ASCII (IDNA) host name or IP literal without brackets
    port: int
    ip: _Address | None  # set when the host is an IP literal
    request_target: str  # path and query, percent-encoded

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


class _Redirect(NamedTuple):
    location: str


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self._end

    def remaining(self) -> float:
        """Seconds left; raises `UrlFetchTimeout` when none are."""
        left = self._end - time.monotonic()
        if left <= 0:
            raise self.error()
        return left

    def error(self) -> UrlFetchTimeout:
        return UrlFetchTimeout(f"the fetch took longer than its {self.seconds:g} s budget")


class _Watchdog:
    """Shuts the watched connection down when the deadline passes, waking any blocked read.

    Socket timeouts bound one read each; this bounds them all together. It keeps its own
    duplicate of the socket's file descriptor, closed only under its lock, so the shutdown
    can never land on an unrelated socket that reused a descriptor number.
    """

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._dup: socket.socket | None = None
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.cancel()
        self.release()

    def watch(self, sock: socket.socket) -> None:
        """Watch `sock`'s connection, TLS wrapping included, until `release`."""
        dup = socket.fromfd(sock.fileno(), sock.family, sock.type)
        with self._lock:
            self._dup, old = dup, self._dup
        if old is not None:
            old.close()

    def release(self) -> None:
        with self._lock:
            dup, self._dup = self._dup, None
        if dup is not None:
            dup.close()

    def _fire(self) -> None:
        with self._lock:
            if self._dup is not None:
                with contextlib.suppress(OSError):
                    self._dup.shutdown(socket.SHUT_RDWR)


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTPConnection that speaks over a socket already connected to a validated address."""

    def __init__(self, sock: socket.socket, target: _Target) -> None:
        super().__init__(target.host, target.port, timeout=sock.gettimeout())
        self._pinned: socket.socket | None = sock

    def connect(self) -> None:
        if self._pinned is None:
            raise http.client.HTTPException("the pinned socket has been used already")
        self.sock, self._pinned = self._pinned, None


@dataclass(frozen=True)
class _Fetcher:
    policy: FetchPolicy
    networks: tuple[_Network, ...]
    deadline: _Deadline
    watchdog: _Watchdog
    ssl_context: ssl.SSLContext | None

    def fetch_once(self, url: str, hop: int) -> bytes | _Redirect:
        """One request: the body of a 2xx answer, or where a redirect points."""
        where = f"redirect {hop}: " if hop else ""
        target = _parse(url, self.policy, where)
        infos = self._resolve(target, where)
        sock = self._connect(target, infos, where)
        conn = _PinnedConnection(sock, target)
        try:
            return self._exchange(conn, sock, url, target, where)
        except TimeoutError as exc:
            raise self.deadline.error() from exc
        except (OSError, http.client.HTTPException) as exc:
            if self.deadline.expired:
                raise self.deadline.error() from exc
            raise UrlFetchFailed(f"{where}fetching from {target.host} failed: {exc!r}") from exc
        finally:
            self.watchdog.release()
            conn.close()

    def _resolve(self, target: _Target, where: str) -> list[_AddrInfo]:
        """Resolve once, and refuse unless every address passes the address rule."""
        if target.ip is not None:
            _check_address(target, target.ip, self.networks, where)
            flags: int = socket.AI_NUMERICHOST
        else:
            flags = 0
        infos = _getaddrinfo(target.host, target.port, flags, self.deadline, where)
        if not infos:
            raise UrlFetchFailed(f"{where}{target.host} resolves to no address")
        for info in infos:
            _check_address(target, ipaddress.ip_address(info[4][0]), self.networks, where)
        return infos

    def _connect(self, target: _Target, infos: list[_AddrInfo], where: str) -> socket.socket:
        """Connect to the first validated address that answers, and wrap TLS for https."""
        failures: list[str] = []
        for family, kind, proto, _, sockaddr in infos:
            sock = socket.socket(family, kind, proto)
            self.watchdog.watch(sock)
            try:
                sock.settimeout(self.deadline.remaining())
                _log.debug("%sconnecting to %s at %s", where, target.host, sockaddr[0])
                sock.connect(sockaddr)
                if target.scheme == "https":
                    context = self.ssl_context or _default_tls()
                    sock.settimeout(self.deadline.remaining())
                    sock = context.wrap_socket(sock, server_hostname=target.host)
                return sock
            except ssl.SSLCertVerificationError as exc:
                self._close(sock)
                raise UrlFetchFailed(
                    f"{where}the TLS certificate of {target.host} did not verify ({exc.verify_message})"
                ) from exc
            except OSError as exc:
                self._close(sock)
                if self.deadline.expired or isinstance(exc, TimeoutError):
                    raise self.deadline.error() from exc
                failures.append(f"{sockaddr[0]}: {exc.strerror or exc!r}")
            except UrlFetchTimeout:
                self._close(sock)
                raise
        raise UrlFetchFailed(
            f"{where}cannot connect to {target.host} port {target.port} ({'; '.join(failures)})"
        )

    def _close(self, sock: socket.socket) -> None:
        self.watchdog.release()
        sock.close()

    def _exchange(
        self,
        conn: _PinnedConnection,
        sock: socket.socket,
        url: str,
        target: _Target,
        where: str,
    ) -> bytes | _Redirect:
        headers = {
            "Host": target.host_header,
            "User-Agent": f"alphacut/{__version__}",
            "Accept": "image/*",
            "Accept-Encoding": "identity",
            "Connection": "close",
        }
        sock.settimeout(self.deadline.remaining())
        conn.request("GET", target.request_target, headers=headers)
        sock.settimeout(self.deadline.remaining())
        response = conn.getresponse()
        with response:
            status = response.status
            if status in _REDIRECTS:
                location = response.getheader("Location")
                if not location:
                    raise UrlFetchFailed(f"{where}{target.host} redirected with no Location")
                return _Redirect(urljoin(url, location.strip()))
            if not 200 <= status < 300:
                raise UrlFetchFailed(f"{where}{target.host} answered HTTP {status}")
            return self._read_body(response, sock, target, where)

    def _read_body(
        self, response: http.client.HTTPResponse, sock: socket.socket, target: _Target, where: str
    ) -> bytes:
        limit = self.policy.max_bytes
        too_large = f"{where}the image at {target.host} is over the {limit} byte limit"
        if response.length is not None and response.length > limit:
            raise ImageTooLarge(f"{too_large} (Content-Length: {response.length})")
        body = bytearray()
        # http.client closes the socket itself once a body is complete, so stop there.
        while len(body) <= limit and not response.isclosed():
            sock.settimeout(self.deadline.remaining())
            chunk = response.read(min(_CHUNK, limit + 1 - len(body)))
            if not chunk:
                break
            body += chunk
        if len(body) > limit:
            raise ImageTooLarge(too_large)
        if self.deadline.expired:  # the watchdog may have cut the body short
            raise self.deadline.error()
        if response.length:  # http.client reports a short body only this way
            raise UrlFetchFailed(
                f"{where}{target.host} closed the connection {response.length} bytes"
                " before the end of the body"
            )
        return bytes(body)


@functools.lru_cache(maxsize=1)
def _default_tls() -> ssl.SSLContext:
    """``ssl.create_default_context()``, made on first https use and shared (it is thread-safe)."""
    return ssl.create_default_context()


def _parse(url: str, policy: FetchPolicy, where: str) -> _Target:
    """Apply the scheme, credentials and host rules, and split the URL for the request."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"{where}refused by the URL rule: not a valid URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in policy.allowed_schemes:
        allowed = ", ".join(policy.allowed_schemes) or "none"
        raise UrlRefused(
            f"{where}refused by the scheme rule: {scheme or 'no scheme'!r} is not allowed"
            f" (allowed: {allowed})"
        )
    if "@" in parts.netloc:
        raise UrlRefused(
            f"{where}refused by the credentials rule: the URL carries a user name or password"
        )
    raw_host = parts.hostname
    if not raw_host:
        raise UrlRefused(f"{where}refused by the host rule: the URL has no host")
    ip: _Address | None
    try:
        ip = ipaddress.ip_address(raw_host)
        host = raw_host
    except ValueError:
        ip = None
        try:
            host = raw_host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            host = ""
        if len(host) > 253 or not _HOSTNAME.fullmatch(host):
            raise UrlRefused(
                f"{where}refused by the host rule: {raw_host!r} is not a valid host name"
            ) from None
    path = parts.path or "/"
    request_target = quote(f"{path}?{parts.query}" if parts.query else path, safe=_TARGET_SAFE)
    return _Target(scheme, host, port or _DEFAULT_PORTS[scheme], ip, request_target)


def _getaddrinfo(
    host: str, port: int, flags: int, deadline: _Deadline, where: str
) -> list[_AddrInfo]:
    """`socket.getaddrinfo` for TCP, given up on when the deadline passes.

    getaddrinfo has no timeout of its own, so it runs in a daemon thread; a resolver that
    hangs keeps that thread, not the caller.
    """
    found: list[_AddrInfo] = []
    failed: list[OSError] = []
    done = threading.Event()

    def resolve() -> None:
        try:
            found.extend(
                socket.getaddrinfo(
                    host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=flags
                )
            )
        except OSError as exc:
            failed.append(exc)
        finally:
            done.set()

    threading.Thread(target=resolve, name="alphacut-resolve", daemon=True).start()
    if not done.wait(deadline.remaining()):
        raise deadline.error()
    if failed:
        reason = failed[0].strerror or repr(failed[0])
        raise UrlFetchFailed(f"{where}cannot resolve {host} ({reason})") from failed[0]
    return found


def _check_address(
    target: _Target, ip: _Address, networks: tuple[_Network, ...], where: str
) -> None:
    reason = refusal_reason(ip, networks)
    if reason is not None:
        literal = target.ip is not None and target.ip == ip
        shown = target.host if literal else f"{target.host} resolves to {ip}, which"
        raise UrlRefused(f"{where}refused by the address rule: {shown} is {reason}")
