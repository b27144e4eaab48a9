"""Silent and half-sent connections cannot starve new requests (security review, issue 31, item 4).

uvicorn counts every open connection against ``limit_concurrency`` (``serving.max_concurrency``)
and, before a connection's first response, arms no timeout at all: without a header deadline,
``max_concurrency`` sockets that send half a request line and then nothing would turn every new
request into a 503 for as long as they stay open. The service runs as ``make serve`` runs it
(``python -m serving.app``).
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from credit_risk.config import PROJECT_ROOT
from tests.conftest import TrainedModel, write_config_dir
from tests.reliability.conftest import serving_section
from tests.support.processes import free_port, wait_for_http

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]  # a hang guard (set-up trains models)

SOCKETS = 1024  # the committed serving.max_concurrency
HEADER_TIMEOUT = 2.0


@dataclass(frozen=True)
class Service:
    process: subprocess.Popen
    port: int
    log: Path


@pytest.fixture
def enough_descriptors() -> Iterator[None]:
    """This process opens ``SOCKETS`` sockets at once: raise its soft descriptor limit if it is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = SOCKETS + 512
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.fail(f"RLIMIT_NOFILE hard limit {hard} is below the {wanted} descriptors this test needs")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def service(trained: TrainedModel, tmp_path: Path, enough_descriptors: None) -> Iterator[Service]:
    port = free_port()
    serving = serving_section(port=port, header_timeout_seconds=HEADER_TIMEOUT, drain_grace_seconds=0.1)
    config_dir = write_config_dir(tmp_path / "config", model={"serving": serving})
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": trained.store.uri,
        "CREDIT_RISK_CONFIG_DIR": str(config_dir),
        "CREDIT_RISK_LOG_DIR": str(tmp_path / "log"),
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "service.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "serving.app"], cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ready", timeout=180, is_alive=lambda: process.poll() is None)
        yield Service(process=process, port=port, log=log)
    finally:
        process.kill()
        process.wait(timeout=10)


def _half_sent(port: int) -> socket.socket:
    """A connection that sends half a request line, then nothing."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /health HT")
    return sock


def test_max_concurrency_half_sent_connections_do_not_starve_a_new_request(service: Service) -> None:
    assert serving_section()["max_concurrency"] == SOCKETS, "the test opens as many sockets as the committed limit"
    with contextlib.ExitStack() as stack:
        for _ in range(SOCKETS):
            stack.enter_context(_half_sent(service.port))
        time.sleep(0.5)  # the service has accepted them all
        started = time.monotonic()
        status = None
        with httpx.Client(timeout=5) as http:
            while time.monotonic() - started < HEADER_TIMEOUT + 5:
                with contextlib.suppress(httpx.TransportError):
                    status = http.get(f"http://127.0.0.1:{service.port}/health").status_code
                    if status == 200:
                        break
                time.sleep(0.2)
        took = time.monotonic() - started
        tail = service.log.read_text()[-1500:]
        assert status == 200, f"with {SOCKETS} half-sent connections open /health got {status}\n{tail}"
        assert took < HEADER_TIMEOUT + 5, f"/health answered 200 only after {took:.1f}s"
