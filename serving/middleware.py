"""Pure ASGI middleware: the Host allow-list, the request-body cap and read deadline, and CORS from
configuration.

Each reads its settings when a request arrives, because the configuration
is loaded in the lifespan (building the app reads nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import orjson
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from credit_risk.config import ServingConfig
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


# ------------------------------------------------------------------ Host allow-list

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
_WILDCARD_BINDS = {"", "0.0.0.0", "::", "[::]"}


def _bracketed(name: str) -> str:
    """An IPv6 address as a Host header writes it: in brackets."""
    return f"[{name}]" if ":" in name and not name.startswith("[") else name


def split_host(value: str) -> tuple[str, str | None]:
    """``name:port`` -> (lower-case name, port or None); an IPv6 literal keeps its brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value.partition("]")
        return name + "]", rest[1:] if rest.startswith(":") else (rest or None)
    name, sep, port = value.partition(":")
    return name, port if sep else None


class HostAllowList:
    """Which ``Host`` headers the service answers (``serving.allowed_hosts``): a page on another
    origin whose name was re-bound to this address (DNS rebinding) sends its own name, and is refused."""

    def __init__(self, serving: ServingConfig) -> None:
        self.port = str(serving.port)
        entries = serving.allowed_hosts
        self.any = entries is not None and "*" in entries
        if entries is None:
            bound = () if serving.host in _WILDCARD_BINDS else (_bracketed(serving.host.lower()),)
            entries = (*bound, *LOOPBACK_NAMES)
        self.named: dict[str, set[str | None]] = {}  # name -> exact ports ({None}: see allows)
        for entry in entries:
            name, port = split_host(entry)
            self.named.setdefault(name, set()).add(port)

    def allows(self, host: str | None, server: tuple[str, int] | None) -> bool:
        """``host``: the request's Host header; ``server``: the address it came in on (ASGI ``server``)."""
        if self.any:
            return True
        if host is None:
            return False
        name, port = split_host(host)
        served = str(server[1]) if server and server[1] is not None else None
        if server and server[0] and name == _bracketed(str(server[0]).lower()):
            return port in (None, self.port, served)  # the address the request came in on, by number
        ports = self.named.get(name)
        if ports is None:
            return False
        if None in ports and port in (None, self.port, served):
            return True
        return port in ports


class HostCheck:
    """400 for a request whose ``Host`` header is not allowed, before anything else reads it
    (the fast path of ``POST /v1/predict`` included: it sits behind this). A verdict is kept per
    raw header and address (a client sends the same ``Host`` on every request), at most
    :attr:`VERDICTS` of them, so the common request costs one dictionary lookup."""

    VERDICTS = 256

    def __init__(self, app: ASGIApp, *, serving: Callable[[], ServingConfig | None]) -> None:
        self.app = app
        self._serving = serving
        self._default = ServingConfig()  # before the lifespan has read the configuration
        self._built: tuple[ServingConfig, HostAllowList, dict[tuple[Any, Any], bool]] | None = None

    def _allow_list(self) -> tuple[HostAllowList, dict[tuple[Any, Any], bool]]:
        serving = self._serving() or self._default
        if self._built is None or self._built[0] is not serving:
            self._built = (serving, HostAllowList(serving), {})
        return self._built[1], self._built[2]

    def _allows(self, raw: bytes | None, server: Any) -> bool:
        allow_list, verdicts = self._allow_list()
        key = (raw, tuple(server) if server is not None else None)  # a test client's is a list
        verdict = verdicts.get(key)
        if verdict is None:
            verdict = allow_list.allows(raw.decode("latin-1") if raw is not None else None, server)
            if len(verdicts) >= self.VERDICTS:  # many names (a scan): start again rather than grow
                verdicts.clear()
            verdicts[key] = verdict
        return verdict

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = None
        for name, value in scope["headers"]:
            if name == b"host":
                raw = value
                break
        if self._allows(raw, scope.get("server")):
            await self.app(scope, receive, send)
            return
        await send_error(
            send,
            400,
            "the Host header names a host this service does not answer for (serving.allowed_hosts): "
            "a request must name the service's own address",
            field="host",
            rule="allowed_hosts",
        )
