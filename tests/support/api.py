"""Run the real scoring service (``uvicorn serving.app:app``) against a test store.

    with running_api(store, tmp_path=tmp_path) as api:
        httpx.post(f"{api.url}/v1/predict", json=applicant)

The process gets the store's tracking URI and config folder, its own
prediction-log folder and an admin token; the block is entered once
``/ready`` answers 200 (a model is loaded and warm). Side-effect free at import.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from credit_risk.scoring import BOOSTERS_ONLY_VARIABLE
from tests.support.processes import RunningProcess, free_port, running_process

PROJECT_ROOT = Path(__file__).resolve().parents[2]

__all__ = ["RunningApi", "running_api", "uvicorn_args"]


@dataclass(frozen=True)
class RunningApi:
    """A running service: where it listens and what it was given."""

    url: str
    port: int
    admin_token: str | None
    log_dir: Path
    process: RunningProcess

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"} if self.admin_token else {}


def uvicorn_args(port: int, *, workers: int = 1, app: str = "serving.app:app") -> list[str]:
    """The command line: loopback only, no access log (the prediction log and /metrics record requests)."""
    args = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    args += ["--http", "serving.http_protocol:HttpProtocol"]  # as ``python -m serving.app`` runs it
    if workers > 1:
        args += ["--workers", str(workers)]
    return args


@contextlib.contextmanager
def running_api(
    store: Any,
    *,
    tmp_path: Path,
    env: Mapping[str, str] | None = None,
    workers: int = 1,
    port: int | None = None,
    log_dir: Path | None = None,
    ready_timeout: float = 90.0,
    wait_ready: bool = True,
) -> Iterator[RunningApi]:
    """Start the service on 127.0.0.1 for ``store`` (a ``tests.conftest.Store``) and wait for ``/ready``.

    ``env`` entries override the defaults (set ``CREDIT_RISK_ADMIN_TOKEN`` to ``""`` to run
    without admin routes). ``wait_ready=False`` only waits for ``/health`` (e.g. to watch a
    service that cannot reach its registry yet).
    """
    port = port or free_port()
    log_dir = log_dir or tmp_path / "prediction-log"
    token = secrets.token_urlsafe(24)
    process_env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": store.uri,
        "CREDIT_RISK_CONFIG_DIR": str(store.settings.config_dir),
        "CREDIT_RISK_LOG_DIR": str(log_dir),
        "CREDIT_RISK_ADMIN_TOKEN": token,
        "PYTHONUNBUFFERED": "1",
        BOOSTERS_ONLY_VARIABLE: "1",  # as ``python -m serving.app`` sets it: XGBoost without scikit-learn
        **(env or {}),
    }
    admin_token = process_env["CREDIT_RISK_ADMIN_TOKEN"] or None
    if admin_token is None:
        process_env.pop("CREDIT_RISK_ADMIN_TOKEN")
    url = f"http://127.0.0.1:{port}"
    with running_process(
        uvicorn_args(port, workers=workers),
        env=process_env,
        cwd=PROJECT_ROOT,
        ready_url=f"{url}/ready" if wait_ready else f"{url}/health",
        timeout=ready_timeout,
        log_path=tmp_path / f"api-{port}.log",
    ) as process:
        yield RunningApi(url=url, port=port, admin_token=admin_token, log_dir=log_dir, process=process)


@contextlib.contextmanager
def running_make_serve(
    trained_store: Any, *, tmp_path: Path, workers: int = 1, serving: Mapping[str, Any] | None = None
) -> Iterator[RunningApi]:
    """The service as ``make serve`` runs it (``python -m serving.app --workers N``) on a copy of the
    committed config with ``serving:`` keys changed (the port is always a free one)."""
    import yaml

    from tests.conftest import write_config_dir
    from tests.reliability.conftest import serving_section

    port = free_port()
    config_dir = write_config_dir(
        tmp_path / f"config-{port}", model={"serving": serving_section(**{**(serving or {}), "port": port})}
    )
    assert yaml.safe_load((config_dir / "model_config.yaml").read_text())["serving"]["port"] == port
    log_dir = tmp_path / f"log-{port}"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": trained_store.uri,
        "CREDIT_RISK_CONFIG_DIR": str(config_dir),
        "CREDIT_RISK_LOG_DIR": str(log_dir),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CREDIT_RISK_ADMIN_TOKEN", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    url = f"http://127.0.0.1:{port}"
    with running_process(
        [sys.executable, "-m", "serving.app", "--workers", str(workers)],
        env=env,
        cwd=PROJECT_ROOT,
        ready_url=f"{url}/ready",
        timeout=120,
        log_path=tmp_path / f"serve-{port}.log",
    ) as process:
        yield RunningApi(url=url, port=port, admin_token=None, log_dir=log_dir, process=process)
