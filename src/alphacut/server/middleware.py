"""Plain ASGI middleware at the edge of the app: body limits, draining and access logs.

They are written against raw ASGI rather than as Starlette `BaseHTTPMiddleware` so
that a too-large upload is refused from its headers, before a single body byte is
read, and so that streaming is never buffered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..errors import ImageTooLarge, UploadStalled
from .metrics import Metrics

__all__ = ["PAGE_POLICY", "BodyLimitMiddleware", "EdgeMiddleware", "GuardMiddleware", "error_body"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("alphacut.access")


def error_body(kind: str, message: str) -> bytes:
    """The JSON shape of every error response."""
    return json.dumps({"error": {"type": kind, "message": message}}).encode()


async def _send_error(
    send: Send, status: int, kind: str, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    body = error_body(kind, message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


#: After a 413, how long the rest of an upload is read and thrown away before the socket
#: closes (nginx's lingering close). Closing with unread bytes makes the kernel send a reset,
#: and clients that send the whole body before reading (urllib, requests) then never see the
#: 413. Bounded in time overall, per silent gap, and in bytes, so a client cannot hold a
#: connection open by trickling data.
LINGER_SECONDS = 30.0
LINGER_IDLE_SECONDS = 2.0
LINGER_BYTES = 1 << 30


class BodyLimitMiddleware:
    """413 for /api/ bodies over `max_bytes` (or the limit `paths` gives that path): from
    Content-Length before reading, or as soon as a chunked body passes the limit while being
    read. Either way the 413 is sent first and the unread rest of the body is then drained
    (bounded), so every client can read it."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        paths: dict[str, int] | None = None,
        idle_seconds: float = 15.0,
    ) -> None:
        self.app = app
        self.default_bytes = max_bytes
        self.paths = paths or {}
        self.idle_seconds = idle_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        max_bytes = self.paths.get(scope["path"], self.default_bytes)
        limit_text = f"upload is larger than the limit of {max_bytes / 2**20:g} MB"
        body = _BodyProgress(receive)
        send = _lingering(send, body)
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _send_error(send, 400, "InputError", "invalid Content-Length header")
                return
            if size > max_bytes:
                await _send_error(send, 413, "ImageTooLarge", limit_text)
                return

        async def limited_receive() -> Message:
            try:
                message = await asyncio.wait_for(body.receive(), self.idle_seconds)
            except asyncio.TimeoutError:
                raise UploadStalled(
                    f"the upload stopped arriving for {self.idle_seconds:g} s", source="upload"
                ) from None
            if body.received > max_bytes:
                raise ImageTooLarge(limit_text, source="upload")
            return message

        await self.app(scope, limited_receive, send)


class _BodyProgress:
    """Counts the request body as it is received and knows when it has all arrived."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.received = 0
        self.complete = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)
        else:
            self.complete = True  # disconnected: nothing more will come
        return message

    async def drain(self) -> None:
        """Read and discard what is left of the body, within the linger bounds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LINGER_SECONDS
        budget = self.received + LINGER_BYTES
        while not self.complete and self.received < budget:
            wait = min(LINGER_IDLE_SECONDS, deadline - loop.time())
            if wait <= 0:
                return
            try:
                await asyncio.wait_for(self.receive(), wait)
            except asyncio.TimeoutError:
                return


def _lingering(send: Send, body: _BodyProgress) -> Send:
    """Wrap `send` so a 413 goes out whole, then the unread body is drained, then it closes."""
    status = 0

    async def lingering_send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            if status == 413:
                headers = [(k, v) for k, v in message.get("headers", ()) if k != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
        elif (
            message["type"] == "http.response.body"
            and status == 413
            and not message.get("more_body", False)
            and not body.complete
        ):
            # The whole reply is on the wire now (it has a Content-Length); holding back the
            # end of the response keeps the server from closing while the client still sends.
            await send({**message, "more_body": True})
            await body.drain()
            await send({"type": "http.response.body", "body": b""})
            return
        await send(message)

    return lingering_send


class EdgeMiddleware:
    """Request ids, one structured access-log line per request, request metrics, and 503
    for new requests once the server is draining for shutdown."""

    def __init__(self, app: ASGIApp, metrics: Metrics, is_draining: Callable[[], bool]) -> None:
        self.app = app
        self.metrics = metrics
        self.is_draining = is_draining

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = (_header(scope, b"x-request-id") or uuid.uuid4().hex.encode())[:64]
        state = {"status": 500, "bytes": 0}

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id)]
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            if self.is_draining() and scope["path"] != "/healthz":
                await _send_error(
                    tracking_send,
                    503,
                    "Overloaded",
                    "server is shutting down",
                    ((b"retry-after", b"5"),),
                )
            else:
                await self.app(scope, receive, tracking_send)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_name = getattr(route, "path", None) or (
                "static" if scope["path"].startswith("/static/") else "unmatched"
            )
            self.metrics.requests.labels(scope["method"], route_name, str(state["status"])).inc()
            self.metrics.latency.labels(route_name).observe(elapsed)
            client = scope.get("client") or ("-", 0)
            access_log.info(
                json.dumps(
                    {
                        "request_id": request_id.decode(errors="replace"),
                        "client": client[0],
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": state["status"],
                        "bytes": state["bytes"],
                        "ms": round(elapsed * 1000, 1),
                    }
                )
            )


#: The page needs nothing but its own files: no inline script or style, no CDN, no frames.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
#: Swagger UI (/docs) starts itself with an inline script; still nothing from elsewhere.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
_HARDENING = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class GuardMiddleware:
    """The browser-facing guards: hardening headers and a Content-Security-Policy on every
    answer (the page's allows nothing inline; /docs' allows Swagger UI's inline start); a
    Host header outside `allowed_hosts` refused (421), so a DNS-rebinding page cannot
    drive a local server; and, on a server without API keys, a state-changing request from
    another site's page refused (403) unless its origin is in `cors_origins`."""

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: tuple[str, ...] | None,
        cors_origins: tuple[str, ...],
        keyless: bool,
    ) -> None:
        self.app = app
        self.allowed_hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}
        self.cors_origins = {o.rstrip("/").lower() for o in cors_origins}
        self.keyless = keyless

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = (
            []
            if scope["path"].startswith("/docs")
            else [(b"content-security-policy", PAGE_POLICY.encode())]
        )

        async def hardened_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *_HARDENING, *policy]
            await send(message)

        host = (_header(scope, b"host") or b"").decode("latin-1").lower()
        if self.allowed_hosts is not None and _hostname(host) not in self.allowed_hosts:
            await _send_error(
                hardened_send, 421, "HostNotAllowed",
                "this server does not answer to that host name (see alphacut serve --allowed-host)",
            )  # fmt: skip
            return
        origin = (_header(scope, b"origin") or b"").decode("latin-1").rstrip("/").lower()
        # Same host, whatever the scheme: behind a proxy that ends TLS the page's origin is
        # https while the server sees http.
        same_host = origin.partition("://")[2] == host
        if (
            self.keyless
            and scope["method"] in _UNSAFE_METHODS
            and origin
            and not same_host
            and origin not in self.cors_origins
        ):
            await _send_error(
                hardened_send, 403, "OriginRefused",
                "another site's page may not use this server: it needs an API key, or "
                "that origin in alphacut serve --cors-origin",
            )  # fmt: skip
            return
        await self.app(scope, receive, hardened_send)


def _hostname(host: str) -> str:
    """The name in a Host header, without its port ("[::1]:7000" → "::1")."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
