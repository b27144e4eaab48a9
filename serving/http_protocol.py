"""The service's HTTP/1.1 protocol: uvicorn's (httptools), with the header deadline of
:mod:`serving.connections`, and its refusals of malformed requests as problem bodies.

A request the HTTP parser refuses (a Content-Length of thousands of digits, a header
with a control character) never reaches the app: uvicorn answers 400 with the text
"Invalid HTTP request received.". This protocol answers the same 400 with the body
every other refusal has (``detail``, and the ``field`` and ``rule`` it broke), so a
client is told that its Content-Length was the problem. ``python -m serving.app``
runs it; with plain ``uvicorn serving.app:app`` add ``--http serving.http_protocol:HttpProtocol``
(the header deadline then has its default, 10 s).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from serving.connections import HeaderDeadlineProtocol
from serving.middleware import LENGTH_DIGITS

_CONTENT_LENGTH = re.compile(rb"(?:^|\r?\n)content-length[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)


def refusal(head: bytes) -> dict[str, str]:
    """The problem body for a request the parser refused, from the bytes it had received."""
    for match in _CONTENT_LENGTH.finditer(head):
        value = match.group(1).strip()
        if not (value.isdigit() and len(value) <= LENGTH_DIGITS):
            shown = f"a {len(value)}-digit number" if value.isdigit() else f"{value[:40].decode('latin-1')!r}"
            return {
                "detail": f"Content-Length must be a number of bytes of at most {LENGTH_DIGITS} digits, "
                f"got {shown}: the request was not read",
                "field": "content-length",
                "rule": "content_length",
            }
    return {"detail": "Invalid HTTP request received.", "field": "request", "rule": "http_syntax"}


class HttpProtocol(HeaderDeadlineProtocol):
    """uvicorn's protocol with the header deadline; the 400 for a request its parser refuses has a body."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._received = (b"", b"")  # the last two chunks: where a refused header was

    def data_received(self, data: bytes) -> None:
        self._received = (self._received[1], data)
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        body = orjson.dumps(refusal(b"".join(self._received)))
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


@dataclass(frozen=True)
class ServiceProtocol:
    """What ``uvicorn.run(http=...)`` takes: builds each connection's :class:`HttpProtocol` with the
    configured header deadline. A plain picklable value, so ``--workers N`` keeps it."""

    header_timeout: float

    def __call__(self, **kwargs: Any) -> HttpProtocol:
        return HttpProtocol(header_timeout=self.header_timeout, **kwargs)
