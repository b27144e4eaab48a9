"""The lifecycle against a team's tracking server: real PostgreSQL, real ``mlflow server``, real API.

train -> promote -> train -> promote -> serve -> predict -> rollback -> reload -> predict, checking
the served version each time. Nothing in the pipelines or the service changes: only
``MLFLOW_TRACKING_URI`` points at ``http://...`` instead of the embedded SQLite store.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import pytest

from credit_risk import registry
from credit_risk.config import PROJECT_ROOT, ProjectConfig, Settings, load_project_config
from pipelines.promote import promote
from pipelines.rollback import rollback
from pipelines.train import train
from tests.conftest import FAST_TRAINING, Store, write_config_dir
from tests.support.api import RunningApi, running_api
from tests.support.postgres import postgres_unavailable_reason, running_postgres, sqlalchemy_url
from tests.support.processes import free_port, mlflow_server_env, running_process
from tests.support.required import require_component

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow server`` on a private PostgreSQL, artifacts proxied to a temp folder; yields its URL."""
    require_component(postgres_unavailable_reason())
    tmp = tmp_path_factory.mktemp("team-server")
    previous, previous_registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    with running_postgres(tmp) as url:
        port = free_port()
        args = [
            *(sys.executable, "-m", "mlflow", "server"),
            *("--backend-store-uri", sqlalchemy_url(url)),
            *("--artifacts-destination", str(tmp / "artifacts")),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        ]
        server_url = f"http://127.0.0.1:{port}"
        with running_process(
            args,
            env=mlflow_server_env(),
            ready_url=f"{server_url}/health",
            timeout=120,
            log_path=tmp / "mlflow-server.log",
        ):
            yield server_url
    # registry.connect set the process-global URIs to the server
    mlflow.set_tracking_uri(previous)
    mlflow.set_registry_uri(previous_registry)


def served_version(api: httpx.Client, config: ProjectConfig) -> str:
    """Score one applicant; the version the answer says it was scored with."""
    record = config.features.example_record()
    applicant = {name: record[name] for name in config.features.input_names}
    response = api.post("/v1/predict", json=applicant)
    assert response.status_code == 200, response.text
    return str(response.json()["model"]["version"])


def reload_model(api: httpx.Client, service: RunningApi) -> None:
    response = api.post("/v1/admin/reload", headers=service.admin_headers())
    assert response.status_code == 200, response.text


def test_lifecycle_runs_unchanged_against_a_team_server(tracking_server: str, tmp_path: Path) -> None:
    config_dir = write_config_dir(tmp_path / "config", training=FAST_TRAINING)
    settings = Settings(MLFLOW_TRACKING_URI=tracking_server, CREDIT_RISK_CONFIG_DIR=config_dir)
    config = load_project_config(config_dir, root=PROJECT_ROOT)
    first = train(config, settings)
    promote(config, settings, reason="first model on the team server")
    second = train(config, settings)
    promote(config, settings, reason="second model on the team server")
    client = registry.connect(settings, config.root)
    experiment = client.get_experiment_by_name(config.model.registry.experiment)
    assert experiment.artifact_location.startswith("mlflow-artifacts:"), "artifacts go through the server"

    store = Store(uri=tracking_server, settings=settings, config=config, client=client)
    with running_api(store, tmp_path=tmp_path) as service, httpx.Client(base_url=service.url, timeout=30) as api:
        assert served_version(api, config) == str(second.version), "serves the promoted version"
        rollback(config, settings, reason="team server rollback test")
        reload_model(api, service)
        assert served_version(api, config) == str(first.version), "serves the version rolled back to"
