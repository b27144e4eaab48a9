"""Every MLflow call the project makes: tracking URI, runs' models, registry, aliases.

A change of backend (embedded SQLite, a team's ``mlflow server`` on
PostgreSQL) is a change of ``MLFLOW_TRACKING_URI`` and nothing else.
"""

from __future__ import annotations

import hmac
import json
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient

from credit_risk.config import RegistryConfig, Settings
from credit_risk.digest import (
    SCORING_ARTIFACT,
    RegistryError,
    UnverifiedArtifactError,
    directory_digest,
    report_digest,
    sign_digest,
    sign_report_digest,
)
from credit_risk.digest import scoring_dir as scoring_dir  # re-exported; register() has a parameter of that name

ARTIFACT_DIGEST_TAG = "artifact_sha256"
# HMAC-SHA256 of the digest under CREDIT_RISK_MODEL_SIGNING_KEY, a key held outside MLflow
ARTIFACT_SIGNATURE_TAG = "artifact_sha256_hmac"
PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")
_PYFUNC_REQUIREMENTS = ("mlflow", "xgboost-cpu", "pandas", "numpy", "pydantic")


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


# ------------------------------------------------------------------ validation reports

# the version tag naming the validation report artifact in the version's training run
VALIDATION_REPORT_TAG = "validation_report"
# the report's folder digest, recorded (and signed) at registration like the model's
REPORT_DIGEST_TAG = "validation_report_sha256"
REPORT_SIGNATURE_TAG = "validation_report_sha256_hmac"
REPORT_DIR = "validation_report"  # in the training run: the page and its data, nothing else
REPORT_PAGE = "validation_report.html"
REPORT_DATA = "validation_report.json"
REPORT_PATH = f"{REPORT_DIR}/{REPORT_PAGE}"
MISMATCH = "it does not match what was registered"


class UnreadableReportError(RegistryError):
    """A version's validation report is not UTF-8 text (or its data not JSON): nothing of it is shown."""


@dataclass(frozen=True)
class VerifiedReport:
    """A version's validation report as registered: the HTML page and the data it was rendered from."""

    page: str
    data: dict[str, Any]


def record_validation_report(
    client: MlflowClient, version: ModelVersion, *, page: str, data: dict[str, Any], signing_key: str | None
) -> str:
    """Log a version's report (page and data) into its training run, record the folder's digest (signed
    with the key when one is given), then tag the version with the page's path; returns that path."""
    name, number = version.name, str(version.version)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / REPORT_DIR
        folder.mkdir()
        (folder / REPORT_PAGE).write_text(page, encoding="utf-8")
        (folder / REPORT_DATA).write_text(json.dumps(data, indent=2), encoding="utf-8")
        digest = report_digest(folder)
        client.log_artifacts(version.run_id, str(folder), artifact_path=REPORT_DIR)
    client.set_model_version_tag(name, number, REPORT_DIGEST_TAG, digest)
    if signing_key:
        signature = sign_report_digest(signing_key, name=name, version=number, digest=digest)
        client.set_model_version_tag(name, number, REPORT_SIGNATURE_TAG, signature)
    client.set_model_version_tag(name, number, VALIDATION_REPORT_TAG, REPORT_PATH)
    return REPORT_PATH


def fetch_verified_report(client: MlflowClient, version: ModelVersion, *, signing_key: str | None) -> VerifiedReport:
    """A version's validation report, only if it is the one registered (as :func:`fetch_verified` for the model).

    Refused (:class:`UnverifiedArtifactError`) when the version has no report digest, when a signing
    key is set and the digest is not signed with it, or when the report's files do not hash to it;
    :class:`UnreadableReportError` when the page is not UTF-8 or its data not JSON.
    """
    number, tags = str(version.version), version.tags or {}
    whose = f"the validation report of version {number} of {version.name!r}"
    if tags.get(VALIDATION_REPORT_TAG) != REPORT_PATH or not version.run_id:
        raise UnverifiedArtifactError(f"{whose} is not where registration writes it: {MISMATCH}")
    expected = tags.get(REPORT_DIGEST_TAG, "")
    if not expected:
        raise UnverifiedArtifactError(f"{whose} has no {REPORT_DIGEST_TAG} tag: it cannot be checked and is not shown")
    if signing_key:
        signature = tags.get(REPORT_SIGNATURE_TAG, "")
        wanted = sign_report_digest(signing_key, name=version.name, version=number, digest=expected)
        if not hmac.compare_digest(signature.encode(), wanted.encode()):
            raise UnverifiedArtifactError(
                f"{whose}: its {REPORT_DIGEST_TAG} tag is not signed under CREDIT_RISK_MODEL_SIGNING_KEY "
                f"({REPORT_SIGNATURE_TAG} missing or wrong): {MISMATCH}"
            )
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(
            mlflow.artifacts.download_artifacts(
                run_id=version.run_id, artifact_path=REPORT_DIR, dst_path=tmp, tracking_uri=client.tracking_uri
            )
        )
        actual = report_digest(local)
        if not hmac.compare_digest(actual.encode(), expected.encode()):
            raise UnverifiedArtifactError(
                f"{whose} does not match what was registered (its files hash to {actual[:12]}..., "
                f"the registration recorded {expected[:12]}...)"
            )
        page, data = (local / REPORT_PAGE).read_bytes(), (local / REPORT_DATA).read_bytes()
    try:
        return VerifiedReport(page=page.decode("utf-8"), data=json.loads(data.decode("utf-8")))
    except UnicodeDecodeError as exc:
        raise UnreadableReportError(f"{whose} is not UTF-8 text (byte {exc.start}): it is not shown") from None
    except ValueError as exc:
        raise UnreadableReportError(f"{whose}: its data is not JSON ({str(exc)[:100]})") from None


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


def signing_key(settings: Settings) -> str | None:
    """``CREDIT_RISK_MODEL_SIGNING_KEY``, or None when it is not set."""
    key = settings.model_signing_key
    return key.get_secret_value() if key is not None and key.get_secret_value() else None


UNSIGNED_WARNING = (
    "CREDIT_RISK_MODEL_SIGNING_KEY is not set: model versions are checked against their artifact_sha256 "
    "tag only, which anyone who can write the registry can rewrite along with the model; set the key "
    "(and security.require_signed_models: true) so that a replaced model is refused"
)


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
    signing_key: str | None = None,
) -> ModelVersion:
    """Log the model (pyfunc from code, data artifacts) in the active run, register it,
    record its artifact digest (and its signature when a key is given) and tags, and give it
    the challenger alias."""
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
        digest = directory_digest(local)
        client.set_model_version_tag(registry.model_name, version.version, ARTIFACT_DIGEST_TAG, digest)
        if signing_key:
            signature = sign_digest(signing_key, name=registry.model_name, version=version.version, digest=digest)
            client.set_model_version_tag(registry.model_name, version.version, ARTIFACT_SIGNATURE_TAG, signature)
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


def resolve(client: MlflowClient, registry: RegistryConfig, ref: str | None = None) -> ModelVersion:
    """The version ``ref`` names: a number (``"3"``), an alias (``"production"``, ``"@challenger"``),
    or None for the one to serve (the pinned version if configured, else the serving alias's)."""
    name = registry.model_name
    if ref is None:
        if registry.pinned_version is not None:
            version = get_version(client, name, registry.pinned_version)
            if version is None:
                raise RegistryError(f"pinned version {registry.pinned_version} of {name!r} does not exist")
            return version
        ref = f"@{registry.serving_alias}"
    ref = ref.strip()
    if ref.isdigit():
        version = get_version(client, name, ref)
        if version is None:
            raise RegistryError(f"version {ref} of {name!r} does not exist")
        return version
    alias = ref.removeprefix("@")
    version = version_for_alias(client, name, alias)
    if version is None:
        raise RegistryError(f"no version of {name!r} holds the alias {alias!r}")
    return version


def check_signature(version: ModelVersion, key: str | None, *, required: bool = False) -> None:
    """With a signing key, refuse a version whose digest tag was not signed with it; without one, refuse
    every version when signatures are ``required`` (``security.require_signed_models``)."""
    number = str(version.version)
    if not key:
        if required:
            raise UnverifiedArtifactError(
                f"version {number} of {version.name!r} is not accepted unsigned: security.require_signed_models "
                "is true and CREDIT_RISK_MODEL_SIGNING_KEY is not set, so no signature can be checked"
            )
        return
    tags = version.tags or {}
    signature = tags.get(ARTIFACT_SIGNATURE_TAG)
    if not signature:
        raise UnverifiedArtifactError(
            f"version {number} of {version.name!r} has no {ARTIFACT_SIGNATURE_TAG} tag while "
            "CREDIT_RISK_MODEL_SIGNING_KEY is set: its digest cannot be trusted"
        )
    expected = sign_digest(key, name=version.name, version=number, digest=tags.get(ARTIFACT_DIGEST_TAG, ""))
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        raise UnverifiedArtifactError(
            f"version {number} of {version.name!r}: the {ARTIFACT_SIGNATURE_TAG} signature does not match its "
            f"{ARTIFACT_DIGEST_TAG} tag under CREDIT_RISK_MODEL_SIGNING_KEY (a digest written without the key)"
        )


def fetch_verified(
    client: MlflowClient,
    version: ModelVersion,
    destination: Path,
    *,
    signing_key: str | None = None,
    require_signed: bool = False,
) -> Path:
    """Download a version's model folder into ``destination`` and return it, only if it is the one registered.

    Refused (:class:`UnverifiedArtifactError`) when the version has no digest tag, when
    a signing key is set and the digest tag is not signed with it, when ``require_signed``
    and no key is set, or when the downloaded files do not hash to the tag. Nothing from the folder is run.
    """
    number = str(version.version)
    expected = (version.tags or {}).get(ARTIFACT_DIGEST_TAG)
    if not expected:
        raise UnverifiedArtifactError(
            f"version {number} of {version.name!r} has no {ARTIFACT_DIGEST_TAG} tag: its artifacts cannot be verified"
        )
    check_signature(version, signing_key, required=require_signed)
    local = download_version(client, version.name, number, destination)
    actual = directory_digest(local)
    if not hmac.compare_digest(actual.encode(), expected.encode()):
        raise UnverifiedArtifactError(
            f"version {number}: artifact hash mismatch (the download's {actual[:12]}... does not match "
            f"the registered {expected[:12]}...)"
        )
    return local


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
