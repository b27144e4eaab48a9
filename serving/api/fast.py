"""The hot route straight on ASGI: ``POST /v1/predict`` without the framework's per-request layers.

A well-formed single-applicant request (JSON with a Content-Length under the
limit, no ``Origin``, no query but ``reasons``) is scored here, in front of
FastAPI's routing, dependency injection and the middleware stack, which
otherwise cost more than the scoring itself (``bench/http_bench.py``). It
keeps what those layers give: the body cap and read deadline, the request id,
the metrics and the access log, and the same scoring and logging code
(``serving.api.scoring``). Anything else, and any request this path would
refuse before it scores, goes to the full app, with the body already read
handed back, so every error is answered by the one error mapping
(:mod:`serving.errors`) exactly as before.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.types import Message, Receive, Scope, Send

from serving.api.scoring import ROUTE, _durable, _offload, _score_record
from serving.errors import ServiceError, error_response, json_response
from serving.middleware import send_error

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(rb"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_QUERIES = {b"": True, b"reasons=true": True, b"reasons=false": False}
_JSON = b"application/json"

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands back what was already read, then reads on."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


class FastPredict:
    """Scores the common single-applicant request; hands every other request to ``app``."""

    def __init__(self, app: ASGIApp, runtime: Callable[[], Any], access_log: Callable[[], Any]) -> None:
        self.app = app
        self._runtime = runtime
        self._access_log = access_log
        self.answered = 0  # requests this path answered itself (the rest went to the full app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != ROUTE or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        runtime = self._runtime()
        reasons = _QUERIES.get(scope["query_string"])
        if runtime is None or reasons is None or runtime.holder.served is None:
            await self.app(scope, receive, send)
            return
        length = -1
        json_type = False
        request_id = b""
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = int(value) if value.isdigit() else -1
            elif name == b"content-type":
                json_type = value.split(b";", 1)[0].strip().lower() == _JSON
            elif name == b"x-request-id":
                request_id = value
            elif name == b"origin" or name == b"transfer-encoding":
                length = -1  # CORS and chunked bodies: the full app's
                break
        serving = runtime.serving
        if not json_type or length < 0 or length > serving.max_body_bytes:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        messages: list[Message] = []
        try:
            async with asyncio.timeout(serving.body_timeout_seconds):
                while True:
                    message = await receive()
                    messages.append(message)
                    if message["type"] != "http.request" or not message.get("more_body", False):
                        break
        except TimeoutError:
            await send_error(send, 408, f"the request body did not arrive within {serving.body_timeout_seconds:g} s")
            self._record(runtime, scope, 408, started, request_id)
            return
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        served = runtime.holder.served
        if messages[-1]["type"] != "http.request" or len(body) != length or served is None:
            await self.app(scope, _replay(messages, receive), send)  # a lying length, a disconnect, a swap to nothing
            return
        try:
            record = served.parser.single(body)
        except ServiceError:
            await self.app(scope, _replay(messages, receive), send)  # the full app answers every refusal
            return
        rid = request_id.decode() if request_id and _REQUEST_ID.match(request_id) else uuid.uuid4().hex
        status = 200
        try:
            heavy = reasons and not served.light_single
            result, ticket = await _offload(
                runtime, heavy, _score_record, runtime, served, record, rid, reasons, started
            )
            await _durable(runtime, ticket)
            payload = orjson.dumps(result)
        except ServiceError as exc:  # after scoring: the log could not take it (503)
            response = error_response(exc)
            status = response.status_code
            await response(scope, _replay(messages, receive), send)
            self._record(runtime, scope, status, started, request_id)
            return
        except Exception:
            log.exception("unhandled error on POST %s", ROUTE)
            status = 500
            await json_response({"detail": "internal error"}, 500)(scope, receive, send)
            self._record(runtime, scope, status, started, request_id)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(payload)).encode()),
                    (b"content-type", _JSON),
                    (b"x-request-id", rid.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        self.answered += 1
        self._record(runtime, scope, status, started, request_id)

    def _record(self, runtime: Any, scope: Scope, status: int, started: float, request_id: bytes) -> None:
        took = time.perf_counter() - started
        metrics = runtime.metrics
        metrics.latency.labels(ROUTE).observe(took)
        metrics.requests.labels(ROUTE, str(status)).inc()
        access = self._access_log()
        if access is not None:
            access.info(
                orjson.dumps(
                    {
                        "ts": time.time(),
                        "method": "POST",
                        "path": ROUTE,
                        "status": status,
                        "ms": round(took * 1000, 3),
                        "client": (scope.get("client") or ("", 0))[0],
                    }
                ).decode()
            )
