"""uvicorn's h11 protocol with a time limit on a request's headers.

uvicorn times out an idle keep-alive connection, but not a client that trickles a request's
headers a byte at a time (slowloris): each such connection is held for as long as the
client likes. Here the headers of every request must arrive within `header_timeout`
seconds of the connection opening (or of the previous response), or the connection closes.
The body has its own limit, per silent gap, in `BodyLimitMiddleware`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["guarded_protocol"]


class _GuardedH11(H11Protocol):
    header_timeout = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for_headers()

    def handle_events(self) -> None:
        super().handle_events()
        if self._awaiting_headers():
            return
        self._cancel()  # a request is under way: its body has its own limit

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._wait_for_headers()  # the next request on this connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _awaiting_headers(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _wait_for_headers(self) -> None:
        self._cancel()
        self._deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _headers_late(self) -> None:
        self._deadline = None
        if self._awaiting_headers() and not self.transport.is_closing():
            self.transport.close()

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


def guarded_protocol(header_timeout: float) -> Any:
    """The protocol class to give uvicorn.Config(http=...)."""
    return type("GuardedH11", (_GuardedH11,), {"header_timeout": header_timeout})
