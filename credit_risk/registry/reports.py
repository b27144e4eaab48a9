"""Validation reports: recorded with a version (digest, signature) and read back verified."""

from __future__ import annotations

import hmac
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from credit_risk.digest import (
    RegistryError,
    UnverifiedArtifactError,
    report_digest,
    sign_report_digest,
)

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
