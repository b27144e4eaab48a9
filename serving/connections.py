"""A deadline for a request's headers: connections that send nothing, or half a request, are closed.

uvicorn counts every open connection against ``limit_concurrency`` (``serving.max_concurrency``)
and arms no timer on a connection before its first answer, nor while the next request's headers
trickle in after one (its keep-alive timer stops at the first byte). Without a deadline,
``max_concurrency`` silent sockets would turn every new request into a 503 for as long as they
stay open. This protocol closes a connection whose request headers have not arrived whole within
``serving.header_timeout_seconds`` of its opening or of its previous answer; the body has its own
deadline (``serving.body_timeout_seconds``, :mod:`serving.middleware`).
"""

from __future__ import annotations

import asyncio
from typing import Any

try:  # what uvicorn's "auto" picks: httptools when installed, else h11
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpProtocol
except ImportError:  # pragma: no cover - httptools is pinned in requirements.txt
    from uvicorn.protocols.http.h11_impl import H11Protocol as _HttpProtocol  # type: ignore[assignment]


DEFAULT_HEADER_TIMEOUT = 10.0  # serving.header_timeout_seconds' default


class HeaderDeadlineProtocol(_HttpProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's HTTP/1.1 protocol, closing a connection that waits for a request's headers too long.

    The service's own protocol (:class:`serving.http_protocol.HttpProtocol`) builds on it; ``python -m
    serving.app`` hands it the configured deadline (:class:`serving.http_protocol.ServiceProtocol`)."""

    def __init__(self, *args: Any, header_timeout: float = DEFAULT_HEADER_TIMEOUT, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        """From now, the next request's headers have ``header_timeout`` seconds to arrive."""
        self._stop_timer()
        self._header_timer = self.loop.call_later(self._header_timeout, self._header_deadline_passed, self.cycle)

    def _header_deadline_passed(self, waited_since: object) -> None:
        # a new request has begun since (its headers arrived: uvicorn made it a new cycle), or one is running
        if self.cycle is not waited_since or (self.cycle is not None and not self.cycle.response_complete):
            return
        if not self.transport.is_closing():
            self.transport.close()

    def _stop_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
