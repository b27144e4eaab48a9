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

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from serving.api.deps import is_json
from serving.api.scoring import REPLAYED_HEADER, ROUTE, Replayed, RequestId, _offload, finish, score_applicant
from serving.deadlines import DEADLINES
from serving.errors import ServiceError, error_response, json_response
from serving.metrics import observe_request
from serving.middleware import LENGTH_DIGITS, send_error

log = logging.getLogger(__name__)

_QUERIES = {b"": True, b"reasons=true": True, b"reasons=false": False}

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
        given_id: str | None = None
        for name, value in scope["headers"]:  # ASGI header values are latin-1, as Starlette reads them
            if name == b"content-length":
                length = int(value) if value.isdigit() and len(value) <= LENGTH_DIGITS else -1
            elif name == b"content-type":
                json_type = is_json(value.decode("latin-1"))
            elif name == b"x-request-id":
                given_id = value.decode("latin-1")
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
            with DEADLINES.within(serving.body_timeout_seconds):
                while True:
                    message = await receive()
                    messages.append(message)
                    if message["type"] != "http.request" or not message.get("more_body", False):
                        break
        except TimeoutError:
            await send_error(send, 408, f"the request body did not arrive within {serving.body_timeout_seconds:g} s")
            self._record(runtime, scope, 408, started)
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
        rid = RequestId.of(given_id, runtime)
        extra: list[tuple[bytes, bytes]] = []
        try:
            heavy = reasons and not served.light_single
            result, pending = await _offload(
                runtime, heavy, score_applicant, runtime, served, record, body, rid, reasons, started
            )
            if isinstance(result, Replayed):  # a retried request id: its first answer, as the route gives it
                answer = result.answer
                extra = [(REPLAYED_HEADER.lower().encode(), b"true")]
            else:  # as the route answers, sent without a Response object
                answer = await finish(runtime, pending, result)
        except ServiceError as exc:  # the id names another request (409), or the log could not take it (503)
            response = error_response(exc)
        except Exception:
            log.exception("unhandled error on POST %s", ROUTE)
            response = json_response({"detail": "internal error"}, 500)
        else:
            headers = [
                (b"x-request-id", rid.value.encode("latin-1")),
                (b"content-length", str(len(answer)).encode("latin-1")),
                (b"content-type", b"application/json"),
                *extra,
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": answer})
            self.answered += 1
            self._record(runtime, scope, 200, started)
            return
        await response(scope, receive, send)
        self._record(runtime, scope, response.status_code, started)

    def _record(self, runtime: Any, scope: Scope, status: int, started: float) -> None:
        observe_request(runtime.metrics, self._access_log(), scope, ROUTE, status, time.perf_counter() - started)
