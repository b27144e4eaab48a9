"""Every MLflow call the project makes: tracking URI, runs' models, registry, aliases.

A change of backend (embedded SQLite, a team's ``mlflow server`` on
PostgreSQL) is a change of ``MLFLOW_TRACKING_URI`` and nothing else. The parts:

- :mod:`.store`: the tracking URI, experiments and runs found by their tags;
- :mod:`.versions`: versions logged, registered, resolved by alias, downloaded and verified;
- :mod:`.reports`: each version's validation report, recorded and read back verified;
- :mod:`.serving_runs`: the runs that collect a served version's prediction log files.
"""

from __future__ import annotations

from credit_risk.digest import (
    RegistryError,
    UnverifiedArtifactError,
    directory_digest,
    report_digest,
    scoring_dir,
    sign_digest,
    sign_report_digest,
)
from credit_risk.registry.reports import (
    MISMATCH,
    REPORT_DATA,
    REPORT_DIGEST_TAG,
    REPORT_DIR,
    REPORT_PAGE,
    REPORT_PATH,
    REPORT_SIGNATURE_TAG,
    VALIDATION_REPORT_TAG,
    UnreadableReportError,
    VerifiedReport,
    fetch_verified_report,
    record_validation_report,
)
from credit_risk.registry.serving_runs import (
    SERVING_RUN_TAG,
    delete_run_artifacts,
    list_artifact_folders,
    list_artifact_paths,
    log_artifact_file,
    serving_run_id,
    serving_run_ids,
)
from credit_risk.registry.store import (
    connect,
    default_tracking_uri,
    embedded_artifact_root,
    ensure_experiment,
    find_tagged_run,
    first_tagged_run,
    is_embedded,
    log_job_params,
)
from credit_risk.registry.versions import (
    ARTIFACT_DIGEST_TAG,
    ARTIFACT_SIGNATURE_TAG,
    PYFUNC_CODE,
    UNSIGNED_WARNING,
    aliases_of,
    check_signature,
    download_version,
    fetch_verified,
    get_version,
    list_versions,
    log_and_register,
    resolve,
    signing_key,
    version_for_alias,
)

__all__ = [
    "ARTIFACT_DIGEST_TAG",
    "ARTIFACT_SIGNATURE_TAG",
    "MISMATCH",
    "PYFUNC_CODE",
    "REPORT_DATA",
    "REPORT_DIGEST_TAG",
    "REPORT_DIR",
    "REPORT_PAGE",
    "REPORT_PATH",
    "REPORT_SIGNATURE_TAG",
    "SERVING_RUN_TAG",
    "UNSIGNED_WARNING",
    "VALIDATION_REPORT_TAG",
    "RegistryError",
    "UnreadableReportError",
    "UnverifiedArtifactError",
    "VerifiedReport",
    "aliases_of",
    "check_signature",
    "connect",
    "default_tracking_uri",
    "delete_run_artifacts",
    "directory_digest",
    "download_version",
    "embedded_artifact_root",
    "ensure_experiment",
    "fetch_verified",
    "fetch_verified_report",
    "find_tagged_run",
    "first_tagged_run",
    "get_version",
    "is_embedded",
    "list_artifact_folders",
    "list_artifact_paths",
    "list_versions",
    "log_and_register",
    "log_artifact_file",
    "log_job_params",
    "record_validation_report",
    "report_digest",
    "resolve",
    "scoring_dir",
    "serving_run_id",
    "serving_run_ids",
    "sign_digest",
    "sign_report_digest",
    "signing_key",
    "version_for_alias",
]
