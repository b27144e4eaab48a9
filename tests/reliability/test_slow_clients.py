"""A client that announces a body and sends only part of it cannot hold a request, nor a shutdown.

The service runs as ``make serve`` runs it (``python -m serving.app``): body reads have a
deadline (``serving.body_timeout_seconds``, answered 408), uvicorn has a graceful-shutdown
timeout and a concurrency limit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from credit_risk.config import PROJECT_ROOT
from tests.conftest import TrainedModel, write_config_dir
from tests.reliability.conftest import serving_section
from tests.support.processes import free_port, wait_for_http

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]  # a hang guard (set-up trains models)

BODY_TIMEOUT = 1.0


@dataclass(frozen=True)
class Service:
    process: subprocess.Popen
    port: int
    log: Path


def _stalled_request(port: int) -> socket.socket:
    """Headers announcing 2,000 bytes of JSON, then 10 bytes, then nothing."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2000\r\n\r\n" + b'{"duration'
    )
    return sock


def _status_of(sock: socket.socket) -> int | None:
    """The status code the service answered on ``sock``, or None when it closed without one."""
    data = b""
    with sock:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return None
            data += chunk
    return int(data.split(b" ", 2)[1])


@pytest.fixture
def service(trained: TrainedModel, tmp_path: Path) -> Service:
    port = free_port()
    serving = serving_section(port=port, body_timeout_seconds=BODY_TIMEOUT, drain_grace_seconds=0.1)
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
        wait_for_http(f"http://127.0.0.1:{port}/ready", timeout=90, is_alive=lambda: process.poll() is None)
    except BaseException:
        process.kill()
        raise
    yield Service(process=process, port=port, log=log)
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def test_a_stalled_body_is_answered_408_within_the_deadline(service: Service) -> None:
    started = time.monotonic()
    status = _status_of(_stalled_request(service.port))
    took = time.monotonic() - started
    assert status == 408, f"a stalled body got {status}\n{service.log.read_text()[-2000:]}"
    assert took < BODY_TIMEOUT + 3, f"the 408 took {took:.1f}s with a {BODY_TIMEOUT}s deadline"


def test_sigterm_with_a_stalled_body_in_flight_ends_the_service(service: Service) -> None:
    sock = _stalled_request(service.port)
    time.sleep(0.2)  # the request is in the app, waiting for its body
    started = time.monotonic()
    service.process.send_signal(signal.SIGTERM)
    try:
        code = service.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"SIGTERM with a stalled body in flight: still running after 30s\n{service.log.read_text()}")
    took = time.monotonic() - started
    # uvicorn re-raises the SIGTERM it caught once its graceful shutdown is done: -15 is a clean end
    assert code in {0, -signal.SIGTERM}, f"exit code {code}\n{service.log.read_text()[-2000:]}"
    assert "scoring service stopped" in service.log.read_text(), "the lifespan's shutdown (log flush) did not run"
    assert took < BODY_TIMEOUT + 10, f"shutdown took {took:.1f}s"
    assert _status_of(sock) in {408, None}, "the stalled request got an answer other than 408"
