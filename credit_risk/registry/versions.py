"""Registered versions: logged and registered, resolved by alias, downloaded and verified."""

from __future__ import annotations

import hmac
import shutil
import tempfile
import warnings
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
from credit_risk.digest import (
    SCORING_ARTIFACT,
    RegistryError,
    UnverifiedArtifactError,
    directory_digest,
    sign_digest,
)

ARTIFACT_DIGEST_TAG = "artifact_sha256"
# HMAC-SHA256 of the digest under CREDIT_RISK_MODEL_SIGNING_KEY, a key held outside MLflow
ARTIFACT_SIGNATURE_TAG = "artifact_sha256_hmac"
PYFUNC_CODE = Path(__file__).parent.with_name("pyfunc_model.py")
_PYFUNC_REQUIREMENTS = ("mlflow", "xgboost-cpu", "pandas", "numpy", "pydantic")


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
