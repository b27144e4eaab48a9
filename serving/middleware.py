"""Pure ASGI middleware: the request-body cap and read deadline, and CORS from configuration.

Both read their settings when the first request arrives, because the
configuration is loaded in the lifespan (building the app reads nothing).
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import orjson
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.errors import BodyTimeoutError, BodyTooLargeError

_DRAIN_CAP = 1 << 20  # read (and drop) at most this much of an oversized body so the client sees the 413
_DRAIN_SECONDS = 1.0  # ... and for at most this long
# a Content-Length with more digits is over any limit; int() would refuse one past 4300 digits
LENGTH_DIGITS = 18


async def _send_413(send: Send, limit: int) -> None:
    await send_error(send, 413, f"request body over the limit of {limit} bytes")


async def _refuse_length(send: Send, value: bytes, limit: int) -> None:
    """413 for a declared length over the limit, naming the header and the limit."""
    declared = f"{int(value)} bytes" if len(value) <= LENGTH_DIGITS else f"a {len(value)}-digit number of bytes"
    await send_error(
        send,
        413,
        f"Content-Length declares {declared}: request body over the limit of {limit} bytes",
        field="content-length",
        rule="max_body_bytes",
    )


async def send_error(send: Send, status: int, detail: str, **extra: str) -> None:
    body = orjson.dumps({"detail": detail, **extra})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """413 for a body over the limit: by Content-Length up front, and by counting the bytes
    as they stream (a missing or lying Content-Length, chunked uploads). 408 for a body that
    does not arrive whole within the deadline: a client that announces a body and sends part
    of it must not hold a request (and so a graceful shutdown) forever."""

    def __init__(self, app: ASGIApp, *, limit: Callable[[str], int], deadline: Callable[[], float]) -> None:
        self.app = app
        self._limit = limit  # path -> byte limit
        self._deadline = deadline  # seconds for the whole body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and (len(value) > LENGTH_DIGITS or int(value) > limit):
                    await _drain(receive, _DRAIN_CAP)
                    await _refuse_length(send, value, limit)
                    return
                break
        received = 0
        finished = False
        body_deadline = anyio.current_time() + self._deadline()

        async def limited_receive() -> Message:
            nonlocal received, finished
            if finished:  # after the body, receive() waits for a disconnect: no deadline there
                return await receive()
            remaining = body_deadline - anyio.current_time()
            with anyio.move_on_after(max(remaining, 0)) as scope_:
                message = await receive()
            if scope_.cancelled_caught:
                raise BodyTimeoutError(f"the request body did not arrive within {self._deadline():g} s")
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                finished = not message.get("more_body", False)
                if received > limit:
                    raise BodyTooLargeError(f"request body over the limit of {limit} bytes")
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTimeoutError as exc:
            if started:
                raise
            await send_error(send, 408, exc.detail)
        except BodyTooLargeError:
            # normally the app's error handler answers; this catches a body read outside a route
            if started:
                raise
            if not finished:
                await _drain(receive, _DRAIN_CAP)
            await _send_413(send, limit)


async def _drain(receive: Receive, cap: int) -> None:
    seen = 0
    # bounded in time too: a client that announces a huge body and sends nothing must not hold us
    with anyio.move_on_after(_DRAIN_SECONDS):
        while seen <= cap:
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


class ConfiguredCORS:
    """CORS for ``serving.cors_origins`` only (no CORS headers at all when the list is empty)."""

    def __init__(self, app: ASGIApp, *, origins: Callable[[], tuple[str, ...] | None]) -> None:
        self.app = app
        self._origins = origins
        self._inner: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._inner is None:
            origins = self._origins()
            if origins is None:  # not configured yet (before the lifespan ran)
                await self.app(scope, receive, send)
                return
            self._inner = (
                CORSMiddleware(
                    self.app,
                    allow_origins=list(origins),
                    allow_methods=["GET", "POST"],
                    allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                    expose_headers=["X-Request-ID"],
                    max_age=600,
                )
                if origins
                else self.app
            )
        await self._inner(scope, receive, send)
