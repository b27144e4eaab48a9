"""The registry (a real ``mlflow server``) unreachable at start and lost during operation.

One run (module fixture): the service starts while nothing listens on the
tracking server's port; then ``mlflow server`` starts on that port (on a copy
of the fleet's registry); then it is killed while the service scores. Each
test checks one claim about what was observed.
"""

from __future__ import annotations

import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
import pytest

from bench.loadgen import LoadReport, format_outcomes, run_load
from tests.conftest import Store
from tests.reliability.conftest import Fleet, applicant_bytes, model_info
from tests.support.api import running_api
from tests.support.processes import free_port, mlflow_server_env, running_process

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]  # a hang guard (set-up trains models)

# The service's registry checks must fail within this long when nothing answers: the reason is
# then in /ready. MLflow's own client retries a refused connection for about four minutes.
REASON_WITHIN_SECONDS = 30.0
READY_WITHIN_SECONDS = 60.0  # after the tracking server answers its /health


@dataclass(frozen=True)
class Outage:
    """What was observed; None where the awaited state never came within its time limit."""

    ready_while_down: tuple[int, dict[str, Any]] | None  # /ready once it gave a reason other than "starting"
    predict_while_down: int
    seconds_to_ready_after_back: float | None
    version_after_back: str | None
    info_after_loss: dict[str, Any] | None  # /v1/model once it reported a failed poll
    ready_after_loss: int
    load_after_loss: LoadReport


def _poll(check: Callable[[], Any], timeout: float) -> Any:
    """``check()`` until it returns something truthy; None after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    return None


def _ready(url: str) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{url}/ready", timeout=10)
    return response.status_code, response.json()


def _reason_given(url: str) -> tuple[int, dict[str, Any]] | None:
    status, body = _ready(url)
    return (status, body) if not body.get("reason", "").startswith("starting") else None


def _failed_poll(url: str) -> dict[str, Any] | None:
    info = model_info(url)
    return info if (info.get("last_poll") or {}).get("outcome") == "registry_error" else None


def _mlflow_server(db: Path, port: int) -> list[str]:
    return [
        *(sys.executable, "-m", "mlflow", "server"),
        *("--backend-store-uri", f"sqlite:///{db}"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]


@pytest.fixture(scope="module")
def outage(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    tmp = tmp_path_factory.mktemp("registry-outage")
    db = tmp / "mlflow.db"
    shutil.copy(unquote(urlparse(fleet.store.uri).path), db)  # the fleet's registry: good version in production
    port = free_port()
    server_url = f"http://127.0.0.1:{port}"
    store = Store(uri=server_url, settings=fleet.store.settings, config=fleet.store.config, client=fleet.store.client)
    body = applicant_bytes(fleet.store)
    with running_api(store, tmp_path=tmp, wait_ready=False) as api:
        ready_while_down = _poll(lambda: _reason_given(api.url), REASON_WITHIN_SECONDS)
        predict_while_down = httpx.post(
            f"{api.url}/v1/predict", content=body, headers={"Content-Type": "application/json"}
        ).status_code
        server = running_process(
            _mlflow_server(db, port),
            env=mlflow_server_env(),
            ready_url=f"{server_url}/health",
            timeout=120,
            log_path=tmp / "mlflow-server.log",
        )
        with server as mlflow_server:
            back = time.monotonic()
            is_ready = _poll(lambda: _ready(api.url)[0] == 200, READY_WITHIN_SECONDS)
            seconds_to_ready = time.monotonic() - back if is_ready else None
            version_after_back = model_info(api.url).get("version") if is_ready else None
            mlflow_server.terminate(signal.SIGKILL, timeout=10)  # the registry dies under the service
            info_after_loss = _poll(lambda: _failed_poll(api.url), REASON_WITHIN_SECONDS)
            load = run_load(api.url, rate=40, duration=3, body=body)
            ready_after_loss = _ready(api.url)[0]
    yield Outage(
        ready_while_down=ready_while_down,
        predict_while_down=predict_while_down,
        seconds_to_ready_after_back=seconds_to_ready,
        version_after_back=version_after_back,
        info_after_loss=info_after_loss,
        ready_after_loss=ready_after_loss,
        load_after_loss=load,
    )


def test_unreachable_registry_at_start_is_not_ready_with_the_reason(outage: Outage) -> None:
    assert outage.ready_while_down is not None, (
        f"/ready said only 'starting' for {REASON_WITHIN_SECONDS:.0f}s: the registry check did not fail in time"
    )
    status, body = outage.ready_while_down
    assert status == 503 and body["ready"] is False
    assert "registry" in body["reason"], body
    assert outage.predict_while_down == 503


def test_service_becomes_ready_once_the_registry_is_back(outage: Outage, fleet: Fleet) -> None:
    assert outage.seconds_to_ready_after_back is not None, f"not ready {READY_WITHIN_SECONDS:.0f}s after"
    assert outage.version_after_back == fleet.good


def test_lost_registry_keeps_the_loaded_model_serving(outage: Outage, fleet: Fleet) -> None:
    failures = outage.load_after_loss.failures()
    assert not failures, format_outcomes(failures)
    assert outage.load_after_loss.version_runs() == [fleet.good]
    assert outage.ready_after_loss == 200


def test_lost_registry_is_reported_as_a_failed_poll(outage: Outage, fleet: Fleet) -> None:
    info = outage.info_after_loss
    assert info is not None, f"/v1/model did not report a failed poll within {REASON_WITHIN_SECONDS:.0f}s"
    assert info["version"] == fleet.good
    assert info["last_poll"]["error"], "the failed poll says why"
