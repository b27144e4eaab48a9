"""The runs that collect each served version's prediction log files, and their artifacts."""

from __future__ import annotations

from pathlib import Path

from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient

from credit_risk.registry.store import ensure_experiment

SERVING_RUN_TAG = "credit_risk.serving_run"


def serving_run_id(client: MlflowClient, *, experiment: str, model_name: str, model_version: str) -> str:
    """The run that collects one model version's prediction log files, created on first use.

    Several workers may create it at once: each then keeps the oldest run (by
    start time, then id) and deletes its own duplicate, so all converge on one.
    """
    experiment_id = ensure_experiment(client, experiment)
    query = (
        f"tags.`{SERVING_RUN_TAG}` = 'true' and tags.model_name = '{model_name}' "
        f"and tags.model_version = '{model_version}'"
    )

    def oldest() -> str | None:
        runs = client.search_runs([experiment_id], filter_string=query, max_results=50)
        return min(runs, key=lambda r: (r.info.start_time, r.info.run_id)).info.run_id if runs else None

    found = oldest()
    if found is not None:
        return found
    tags = {SERVING_RUN_TAG: "true", "model_name": model_name, "model_version": str(model_version)}
    mine = client.create_run(experiment_id, tags=tags, run_name=f"serving {model_name} v{model_version}").info.run_id
    chosen = oldest() or mine
    if chosen != mine:
        client.delete_run(mine)
    return chosen


def log_artifact_file(client: MlflowClient, run_id: str, path: Path, artifact_path: str) -> None:
    """Copy one local file into a run's artifacts under ``artifact_path``."""
    client.log_artifact(run_id, str(path), artifact_path=artifact_path)


def list_artifact_paths(client: MlflowClient, run_id: str, path: str) -> list[str]:
    """Every file's artifact path under ``path`` in a run, recursively."""
    found: list[str] = []
    for info in client.list_artifacts(run_id, path):
        found.extend(list_artifact_paths(client, run_id, info.path) if info.is_dir else [info.path])
    return found


def serving_run_ids(client: MlflowClient, experiment: str) -> list[str]:
    """Every run of the serving experiment that collects prediction log files (none: no experiment yet)."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    query = f"tags.`{SERVING_RUN_TAG}` = 'true'"
    return [run.info.run_id for run in client.search_runs([found.experiment_id], filter_string=query)]


def list_artifact_folders(client: MlflowClient, run_id: str, path: str) -> list[str]:
    """The artifact paths of the folders directly under ``path`` in a run."""
    return [info.path for info in client.list_artifacts(run_id, path) if info.is_dir]


def delete_run_artifacts(client: MlflowClient, run_id: str, path: str) -> None:
    """Delete a run's artifacts under ``path`` (a file or a folder) from the artifact store."""
    get_artifact_repository(client.get_run(run_id).info.artifact_uri).delete_artifacts(path)
