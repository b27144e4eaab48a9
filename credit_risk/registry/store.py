"""The tracking store: its URI, experiments, and runs found by their tags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from credit_risk.config import Settings
from credit_risk.digest import (
    RegistryError,
)


def default_tracking_uri(root: Path) -> str:
    return f"sqlite:///{(root / 'mlruns' / 'mlflow.db').resolve()}"


def is_embedded(uri: str) -> bool:
    return uri.startswith("sqlite:")


def connect(settings: Settings, root: Path) -> MlflowClient:
    """Point MLflow at the configured store (embedded SQLite by default) and return a client."""
    uri = settings.mlflow_tracking_uri or default_tracking_uri(root)
    if uri == default_tracking_uri(root):
        (root / "mlruns").mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def embedded_artifact_root(uri: str) -> Path | None:
    """For an embedded SQLite store, its artifact folder: ``artifacts/`` beside the database file."""
    if not is_embedded(uri):
        return None
    return Path(uri.removeprefix("sqlite:///")).parent / "artifacts"


def ensure_experiment(client: MlflowClient, name: str) -> str:
    """The experiment's id, creating it; an embedded store keeps its artifacts beside its database."""
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    root = embedded_artifact_root(client.tracking_uri)
    return client.create_experiment(name, artifact_location=root.resolve().as_uri() if root else None)


def first_tagged_run(client: MlflowClient, experiment: str, tags: dict[str, str], *, run_name: str) -> tuple[Any, bool]:
    """The oldest run of ``experiment`` carrying all ``tags``, created (with them) when there is none.

    Returns ``(run, created)``. Several processes may create it at once: each keeps the oldest
    (by start time, then id) and deletes its own duplicate, so all converge on one run.
    """
    experiment_id = ensure_experiment(client, experiment)
    query = " and ".join(f"tags.`{key}` = '{value}'" for key, value in tags.items())

    def oldest() -> Any:
        runs = client.search_runs([experiment_id], filter_string=query, max_results=50)
        return min(runs, key=lambda r: (r.info.start_time, r.info.run_id)) if runs else None

    found = oldest()
    if found is not None:
        return found, False
    mine = client.create_run(experiment_id, tags=tags, run_name=run_name)
    client.set_terminated(mine.info.run_id)
    chosen = oldest() or mine
    if chosen.info.run_id != mine.info.run_id:
        client.delete_run(mine.info.run_id)
        return chosen, False
    return client.get_run(mine.info.run_id), True


def find_tagged_run(client: MlflowClient, experiment: str, tags: dict[str, str]) -> Any | None:
    """The oldest run of ``experiment`` carrying all ``tags``, or None (also when there is no such experiment)."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    query = " and ".join(f"tags.`{key}` = '{value}'" for key, value in tags.items())
    runs = client.search_runs([found.experiment_id], filter_string=query, max_results=50)
    return min(runs, key=lambda r: (r.info.start_time, r.info.run_id)) if runs else None


def log_job_params(params: dict[str, Any]) -> None:
    """Log a job's parameters into the active run without clashing with ``mlflow run``.

    Under ``mlflow run`` the run already holds the entry point's parameters as typed on the command
    line, and MLflow refuses to change a logged value. A value the job resolved differently (a
    default filled in, ``True`` for ``true``) is logged beside the given one as ``<key>_resolved``.
    """
    run = mlflow.active_run()
    if run is None:
        raise RegistryError("log_job_params needs an active run")
    given = MlflowClient().get_run(run.info.run_id).data.params
    out: dict[str, str] = {}
    for key, value in params.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if key not in given:
            out[key] = text
        elif given[key] != text:
            out[f"{key}_resolved"] = text
    if out:
        mlflow.log_params(out)
