"""Every MLflow call the project makes: tracking URI, runs' models, registry, aliases.

A change of backend (embedded SQLite, a team's ``mlflow server`` on
PostgreSQL) is a change of ``MLFLOW_TRACKING_URI`` and nothing else.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from credit_risk.config import RegistryConfig, Settings

ARTIFACT_DIGEST_TAG = "artifact_sha256"
HISTORY_TAG_PREFIX = "alias_history."
SCORING_ARTIFACT = "scoring_model"
PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")
_PYFUNC_REQUIREMENTS = ("mlflow", "xgboost-cpu", "pandas", "numpy", "pydantic")


class RegistryError(RuntimeError):
    """A registry operation cannot be done; the message says why."""


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


# MLflow writes this bookkeeping file (model name and version) into a version's folder when the
# version is downloaded through the registry; it is not part of the model and is not hashed.
_UNHASHED = frozenset({"registered_model_meta"})


def directory_digest(directory: Path) -> str:
    """SHA-256 over every model file's relative path and bytes, in a fixed order."""
    digest = hashlib.sha256()
    files = sorted(p for p in Path(directory).rglob("*") if p.is_file() and p.name not in _UNHASHED)
    for path in files:
        digest.update(path.relative_to(directory).as_posix().encode())
        digest.update(b"\0")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def _pinned_requirements() -> list[str]:
    return [f"{name}=={metadata.version(name)}" for name in _PYFUNC_REQUIREMENTS]


def log_and_register(
    client: MlflowClient,
    *,
    scoring_dir: Path,
    registry: RegistryConfig,
    input_example: pd.DataFrame,
    output_example: Any,
    tags: dict[str, str],
) -> ModelVersion:
    """Log the model (pyfunc from code, data artifacts) in the active run, register it,
    record its artifact digest and tags, and give it the challenger alias."""
    with warnings.catch_warnings():
        # integer columns are required and never missing: the schema says so
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        signature = infer_signature(input_example, output_example)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # the pyfunc validates its input against the feature schema itself
        warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method")
        # the package's source only: no bytecode caches in the model's artifacts
        package = Path(tmp) / PYFUNC_CODE.parent.name
        shutil.copytree(PYFUNC_CODE.parent, package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PYFUNC_CODE),
            artifacts={SCORING_ARTIFACT: str(scoring_dir)},
            code_paths=[str(package)],
            signature=signature,
            input_example=input_example,
            pip_requirements=_pinned_requirements(),
        )
    version = mlflow.register_model(info.model_uri, registry.model_name, tags=tags)
    with tempfile.TemporaryDirectory() as tmp:
        local = download_version(client, registry.model_name, version.version, Path(tmp))
        client.set_model_version_tag(registry.model_name, version.version, ARTIFACT_DIGEST_TAG, directory_digest(local))
    client.set_registered_model_alias(registry.model_name, registry.challenger_alias, version.version)
    return client.get_model_version(registry.model_name, version.version)


def download_version(client: MlflowClient, name: str, version: str | int, destination: Path) -> Path:
    """Copy a version's model folder into ``destination`` and return its path.

    Resolved through ``client``, never through MLflow's process-wide registry
    URI, so two stores in one process cannot be mixed up.
    """
    source = client.get_model_version_download_uri(name, str(version))
    Path(destination).mkdir(parents=True, exist_ok=True)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=source, dst_path=str(destination), tracking_uri=client.tracking_uri
    )
    return Path(local)


def scoring_dir(model_dir: Path) -> Path:
    """Where the plain-data scoring model sits inside a downloaded pyfunc model folder."""
    return Path(model_dir) / "artifacts" / SCORING_ARTIFACT


def version_for_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return None
        raise


def get_version(client: MlflowClient, name: str, version: str | int) -> ModelVersion | None:
    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return None
        raise


def resolve_served_version(client: MlflowClient, registry: RegistryConfig) -> ModelVersion:
    """The version to serve: the pinned one if configured, else the serving alias's."""
    if registry.pinned_version is not None:
        version = get_version(client, registry.model_name, registry.pinned_version)
        if version is None:
            raise RegistryError(f"pinned version {registry.pinned_version} of {registry.model_name!r} does not exist")
        return version
    version = version_for_alias(client, registry.model_name, registry.serving_alias)
    if version is None:
        raise RegistryError(f"no version of {registry.model_name!r} holds the alias {registry.serving_alias!r}")
    return version


def list_versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    versions = client.search_model_versions(f"name = '{name}'")
    return sorted(versions, key=lambda v: int(v.version))


def aliases_of(client: MlflowClient, name: str) -> dict[str, str]:
    """Alias -> version for a registered model ({} when the model does not exist)."""
    try:
        return {alias: str(version) for alias, version in client.get_registered_model(name).aliases.items()}
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return {}
        raise


# ------------------------------------------------------------------ alias history


@dataclass(frozen=True)
class AliasEvent:
    """One move of an alias, kept append-only as a tag on the registered model."""

    sequence: int
    at: str
    alias: str
    from_version: str | None
    to_version: str
    action: str
    actor: str
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)


def alias_history(client: MlflowClient, name: str) -> list[AliasEvent]:
    try:
        tags = client.get_registered_model(name).tags
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return []
        raise
    events = [AliasEvent(**json.loads(value)) for key, value in tags.items() if key.startswith(HISTORY_TAG_PREFIX)]
    return sorted(events, key=lambda e: e.sequence)


def move_alias(
    client: MlflowClient,
    name: str,
    alias: str,
    version: str,
    *,
    action: str,
    reason: str,
    figures: dict[str, Any] | None = None,
    actor: str | None = None,
) -> AliasEvent:
    """Point ``alias`` at ``version`` and append the move to the history."""
    if get_version(client, name, version) is None:
        raise RegistryError(f"version {version} of {name!r} does not exist")
    history = alias_history(client, name)
    event = AliasEvent(
        sequence=(history[-1].sequence + 1) if history else 1,
        at=datetime.now(UTC).isoformat(timespec="seconds"),
        alias=alias,
        from_version=aliases_of(client, name).get(alias),
        to_version=str(version),
        action=action,
        actor=actor or getpass.getuser(),
        reason=reason,
        figures=figures or {},
    )
    client.set_registered_model_alias(name, alias, str(version))
    client.set_registered_model_tag(name, f"{HISTORY_TAG_PREFIX}{event.sequence:06d}", json.dumps(asdict(event)))
    return event


# ------------------------------------------------------------------ serving runs (prediction log)

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
