"""A fixed-rate, open-loop HTTP load generator for the scoring service (loopback only).

Request ``i`` is due at ``start + i / rate`` whether or not earlier ones have
answered (open loop: a slow server does not slow the load down, so tail
latency is honest). Latency is measured from when a request was due, so time
spent waiting for a free connection counts. The run is bounded in time
(``duration``) and count (``rate * duration``); at most ``max_in_flight``
requests are outstanding, and a request due while that many are waiting is
not sent and is recorded as ``overload`` (the generator, not the server, was
saturated). Every outcome is kept: status, error class, latency, the request
id and the model version the answer names.

    report = run_load("http://127.0.0.1:8000", rate=50, duration=10, body=applicant_bytes)
    with BackgroundLoad("http://127.0.0.1:8000", rate=50, duration=30, body=...) as load:
        ...  # move an alias, send SIGTERM, ...
    load.report.failures()

``python -m bench.loadgen --url http://127.0.0.1:8000 --rate 50 --duration 10`` prints a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

# Error classes. A *clean refusal* means the server did not take the request on: nothing was
# scored and no partial answer was sent (connection refused or reset before any byte of a
# response, or closed without a response). Anything else that is not a 2xx is a failure.
REFUSED = "refused"  # connect() failed: nothing listens (or the backlog was reset)
NO_RESPONSE = "no_response"  # the connection closed before any byte of a response
TRUNCATED = "truncated"  # a status line arrived, then the body was cut or is not valid JSON
TIMEOUT = "timeout"
OVERLOAD = "overload"  # not sent: max_in_flight requests were already outstanding
OTHER = "other"  # any other client-side HTTP error
CLEAN_REFUSALS = frozenset({REFUSED, NO_RESPONSE})

Body = bytes | Callable[[int], bytes]


@dataclass(frozen=True)
class Outcome:
    """What became of one request."""

    index: int
    due: float  # seconds after the start when it was due
    sent: float  # seconds after the start when it was handed to the client (late if this process lagged)
    done: float  # seconds after the start when the answer (or the error) came
    status: int | None  # HTTP status, None when no response arrived
    error: str | None  # one of the classes above, None when a complete response arrived
    request_id: str  # the X-Request-ID sent
    version: str | None  # model version named in a 200 answer
    answered_id: str | None  # request_id in a 200 answer (batch: the batch_id)
    detail: str = ""  # exception text or the start of an unexpected body

    @property
    def latency_ms(self) -> float:
        """From when it was due to the answer: the open-loop figure (no coordinated omission)."""
        return (self.done - self.due) * 1000.0

    @property
    def response_ms(self) -> float:
        """From when it was sent to the answer (leaves out this process's own lag)."""
        return (self.done - self.sent) * 1000.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def clean_refusal(self) -> bool:
        return self.error in CLEAN_REFUSALS or self.status == 503


@dataclass
class LoadReport:
    """All outcomes of one run, in the order the requests were due."""

    rate: float
    duration: float
    outcomes: list[Outcome] = field(default_factory=list)
    elapsed: float = 0.0

    def by_class(self) -> Counter[str]:
        """Count per outcome class: ``200``, ``503``, ``refused``, ``truncated``, ..."""
        return Counter(o.error or str(o.status) for o in self.outcomes)

    def answered(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.ok]

    def failures(self, *, allow_clean_refusals: bool = False) -> list[Outcome]:
        """Every outcome that is not a complete 2xx answer (optionally tolerating clean refusals)."""
        return [o for o in self.outcomes if not o.ok and not (allow_clean_refusals and o.clean_refusal)]

    def versions_in_due_order(self) -> list[str]:
        return [o.version for o in self.outcomes if o.ok and o.version is not None]

    def version_runs(self) -> list[str]:
        """The versions answered, in due order, with repeats collapsed: ``["1", "2"]`` is one switch."""
        runs: list[str] = []
        for version in self.versions_in_due_order():
            if not runs or runs[-1] != version:
                runs.append(version)
        return runs

    def stale_answers(self, new_version: str) -> list[Outcome]:
        """Answers from another version to requests sent after the first ``new_version`` answer had
        arrived. With one atomic switch there are none: requests in flight at the switch may come
        back from either version in any order, but nothing sent after the switch was seen may."""
        first_new = min((o.done for o in self.answered() if o.version == new_version), default=math.inf)
        return [o for o in self.answered() if o.version != new_version and o.sent > first_new]

    def in_flight_at_switch(self, new_version: str) -> list[Outcome]:
        """Answers sent before the first ``new_version`` answer arrived and done after it (either version)."""
        first_new = min((o.done for o in self.answered() if o.version == new_version), default=math.inf)
        return [o for o in self.answered() if o.sent <= first_new <= o.done]

    def latency_percentile(self, q: float, *, start: float = 0.0, end: float = math.inf) -> float | None:
        """The ``q``-th percentile (0-100) of answered requests' latency (ms) due in [start, end)."""
        return percentile([o.latency_ms for o in self.answered() if start <= o.due < end], q)

    def response_percentile(self, q: float) -> float | None:
        """The ``q``-th percentile of answered requests' send-to-answer time (ms)."""
        return percentile([o.response_ms for o in self.answered()], q)

    def summary(self) -> dict[str, Any]:
        answered = self.answered()
        return {
            "rate": self.rate,
            "duration_s": self.duration,
            "elapsed_s": round(self.elapsed, 2),
            "sent": sum(1 for o in self.outcomes if o.error != OVERLOAD),
            "answered": len(answered),
            "achieved_rps": round(len(answered) / self.elapsed, 1) if self.elapsed else 0.0,
            "classes": dict(self.by_class()),
            "p50_ms": _round(self.latency_percentile(50)),
            "p99_ms": _round(self.latency_percentile(99)),
            "p99_response_ms": _round(self.response_percentile(99)),
            "max_ms": _round(max((o.latency_ms for o in answered), default=None)),
            "versions": self.version_runs(),
        }


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0-100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(max(math.ceil(q / 100.0 * len(ordered)) - 1, 0), len(ordered) - 1)]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def check_loopback(url: str) -> None:
    """Refuse to load anything but this machine."""
    host = urlparse(url).hostname
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"the load generator only targets loopback addresses, not {host!r}")


def _version_and_id(body: bytes) -> tuple[str | None, str | None]:
    data = json.loads(body)
    model = data.get("model") or {}
    return model.get("version"), data.get("request_id") or data.get("batch_id")


async def _one(
    client: httpx.AsyncClient,
    url: str,
    index: int,
    body: bytes,
    request_id: str,
    due: float,
    clock: Callable[[], float],
) -> Outcome:
    headers = {"Content-Type": "application/json", "X-Request-ID": request_id}
    sent = clock()
    status: int | None = None

    def failed(error: str, exc: BaseException) -> Outcome:
        return Outcome(index, due, sent, clock(), status, error, request_id, None, None, repr(exc)[:200])

    try:
        async with client.stream("POST", url, content=body, headers=headers) as response:
            status = response.status_code
            payload = await response.aread()
    except httpx.ConnectError as exc:
        return failed(REFUSED, exc)
    except httpx.TimeoutException as exc:
        return failed(TIMEOUT, exc)
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        # no status line yet: the server closed or reset the connection before answering
        return failed(NO_RESPONSE if status is None else TRUNCATED, exc)
    except httpx.HTTPError as exc:
        return failed(OTHER, exc)
    done = clock()
    if status != 200:
        text = payload[:300].decode("utf-8", "replace")
        return Outcome(index, due, sent, done, status, None, request_id, None, None, text)
    try:
        version, answered_id = _version_and_id(payload)
    except ValueError as exc:
        return Outcome(index, due, sent, done, status, TRUNCATED, request_id, None, None, str(exc)[:200])
    return Outcome(index, due, sent, done, status, None, request_id, version, answered_id)


async def run_load_async(
    url: str,
    *,
    rate: float,
    duration: float,
    body: Body,
    path: str = "/v1/predict",
    max_in_flight: int = 64,
    timeout: float = 10.0,
    keep_alive: bool = True,
    stop: threading.Event | None = None,
    id_prefix: str | None = None,
    started: float | None = None,
) -> LoadReport:
    """Send ``rate`` requests per second for ``duration`` seconds (or until ``stop`` is set).

    ``body`` is the request body, or a function of the request's index returning it.
    ``keep_alive=False`` opens a new connection per request (as many separate clients would).
    ``started`` is the ``time.perf_counter()`` the outcomes' times count from (default: now).
    """
    check_loopback(url)
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    total = max(int(rate * duration), 1)
    prefix = id_prefix or f"load-{secrets.token_hex(4)}"
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight if keep_alive else 0)
    report = LoadReport(rate=rate, duration=duration)
    pending: dict[asyncio.Task[Outcome], tuple[int, float, str]] = {}
    results: list[Outcome] = []
    target = url.rstrip("/") + path
    origin = time.perf_counter() if started is None else started

    def clock() -> float:
        return time.perf_counter() - origin

    def finished(task: asyncio.Task[Outcome]) -> None:
        pending.pop(task, None)
        if not task.cancelled():
            results.append(task.result())

    async with httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as client:
        for index in range(total):
            due = index / rate
            delay = due - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            if stop is not None and stop.is_set():
                break
            request_id = f"{prefix}-{index:07d}"
            if len(pending) >= max_in_flight:
                now = clock()
                results.append(Outcome(index, due, now, now, None, OVERLOAD, request_id, None, None))
                continue
            payload = body(index) if callable(body) else body
            task = asyncio.create_task(_one(client, target, index, payload, request_id, due, clock))
            pending[task] = (index, due, request_id)
            task.add_done_callback(finished)
        if pending:
            await asyncio.wait(set(pending), timeout=timeout + 5)
        for task, (index, due, request_id) in list(pending.items()):  # never answered, even past the timeout
            task.cancel()
            now = clock()
            results.append(Outcome(index, due, now, now, None, TIMEOUT, request_id, None, None, "cancelled"))
    report.elapsed = clock()
    report.outcomes = sorted(results, key=lambda o: o.index)
    return report


def run_load(url: str, **kwargs: Any) -> LoadReport:
    """:func:`run_load_async` from synchronous code."""
    return asyncio.run(run_load_async(url, **kwargs))


class BackgroundLoad:
    """Runs :func:`run_load` in a thread for the duration of a ``with`` block (or until ``duration``).

    Leaving the block stops sending new requests and waits for the outstanding ones;
    ``report`` is then filled. ``started_at`` is the ``time.perf_counter()`` of the start, to
    relate outcomes' ``due``/``done`` to events the caller timed.
    """

    def __init__(self, url: str, **kwargs: Any) -> None:
        check_loopback(url)
        self._url = url
        self._kwargs = kwargs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="background-load", daemon=True)
        self._error: BaseException | None = None
        self.report: LoadReport | None = None
        self.started_at = 0.0

    def _run(self) -> None:
        try:
            self.report = run_load(self._url, stop=self._stop, started=self.started_at, **self._kwargs)
        except BaseException as exc:  # surfaced in stop()
            self._error = exc

    def is_running(self) -> bool:
        """True until the run has finished its duration (or was stopped)."""
        return self._thread.is_alive()

    def elapsed(self) -> float:
        """Seconds since the load started, on the outcomes' clock."""
        return time.perf_counter() - self.started_at

    def __enter__(self) -> BackgroundLoad:
        self.started_at = time.perf_counter()
        self._thread.start()
        return self

    def stop(self, timeout: float = 60.0) -> LoadReport:
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the load generator did not stop")
        if self._error is not None:
            raise self._error
        assert self.report is not None
        return self.report

    def wait(self, timeout: float = 120.0) -> LoadReport:
        """Let the run finish its full duration."""
        self._thread.join(timeout)
        return self.stop()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def format_outcomes(outcomes: Iterable[Outcome], limit: int = 5) -> str:
    """A few outcomes, readable in an assertion message."""
    shown = [asdict(o) for o in list(outcomes)[:limit]]
    return json.dumps(shown, indent=1, default=str)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--max-in-flight", type=int, default=64)
    parser.add_argument("--body", help="a JSON file with one applicant (default: the configured schema's example)")
    args = parser.parse_args(argv)
    if args.body:
        body = Path(args.body).read_bytes()
    else:
        from credit_risk.config import Settings, load_project_config

        body = json.dumps(load_project_config(Settings().config_dir).features.example_record()).encode()
    report = run_load(args.url, rate=args.rate, duration=args.duration, body=body, max_in_flight=args.max_in_flight)
    print(json.dumps(report.summary(), indent=2))
    return 0 if not report.failures() else 1


if __name__ == "__main__":
    sys.exit(main())
