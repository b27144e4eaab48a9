"""Replay: re-make logged decisions with what made them, and say whether they come out the same.

Each logged record is re-scored by the model version named in it (downloaded from the registry,
its artifact digest checked against the one recorded at registration) under the decision policy
version named in it (read back from MLflow, its digest checked), never by what serves now. The
probability must agree within ``audit.probability_tolerance`` (the service may score with its
numpy tree runtime, verified against XGBoost to that tolerance at every load; replay scores with
XGBoost itself); score, band, decision and reason codes must be equal. A logged record whose
inputs or outputs were altered after the fact comes out different.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from credit_risk import policy as policies
from credit_risk import registry
from credit_risk.config import ProjectConfig
from credit_risk.decision import DecisionEngine
from credit_risk.scoring import ScoringModel

COMPARED = ("probability", "score", "risk_band", "decision", "reasons")


@dataclass
class RecordReplay:
    """One record's replay: ``status`` is ``identical``, ``different`` or ``not_replayable`` (with ``error``)."""

    request_id: str
    model_version: str
    policy_version: str
    status: str
    differences: dict[str, dict[str, Any]] = field(default_factory=dict)
    replayed: dict[str, Any] = field(default_factory=dict)
    reasons_compared: bool = True
    error: str | None = None
    experiment_arm: str | None = None  # the arm of an experiment the decision was made in (its version decided)

    @property
    def identical(self) -> bool:
        return self.status == "identical"

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"identical": self.identical}


class VersionCache:
    """Verified model versions and recorded policies, fetched once each per replay."""

    def __init__(self, client: MlflowClient, config: ProjectConfig, *, signing_key: str | None = None) -> None:
        self.client = client
        self.config = config
        self.signing_key = signing_key
        self._models: dict[tuple[str, str], ScoringModel | Exception] = {}
        self._policies: dict[str, policies.PolicySnapshot | Exception] = {}

    def model(self, name: str, version: str) -> ScoringModel:
        key = (name, version)
        if key not in self._models:
            try:
                self._models[key] = fetch_verified_model(self.client, name, version, signing_key=self.signing_key)
            except Exception as exc:  # reported per record, never a crash of the whole replay
                self._models[key] = exc
        found = self._models[key]
        if isinstance(found, Exception):
            raise found
        return found

    def policy(self, version: str) -> policies.PolicySnapshot:
        if version not in self._policies:
            try:
                self._policies[version] = policies.load_policy(
                    self.client, self.config.model.audit.policy_experiment, version
                )
            except Exception as exc:
                self._policies[version] = exc
        found = self._policies[version]
        if isinstance(found, Exception):
            raise found
        return found


def fetch_verified_model(
    client: MlflowClient, name: str, version: str, *, signing_key: str | None = None
) -> ScoringModel:
    """Download one registered version and load it only if its files match the digest recorded at registration."""
    found = registry.get_version(client, name, version)
    if found is None:
        raise registry.RegistryError(f"version {version} of {name!r} does not exist")
    with tempfile.TemporaryDirectory(prefix="credit-risk-replay-") as tmp:
        local = registry.fetch_verified(client, found, Path(tmp), signing_key=signing_key)
        return ScoringModel.load(registry.scoring_dir(local), threads=1)


def replay_records(records: Sequence[Mapping[str, Any]], cache: VersionCache) -> list[RecordReplay]:
    """Replay logged rows (as the log holds them), grouped so each version and policy scores its rows at once."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for i, record in enumerate(records):
        key = (str(record["model_name"]), str(record["model_version"]), str(record.get("decision_policy_version")))
        groups.setdefault(key, []).append(i)
    out: list[RecordReplay | None] = [None] * len(records)
    tolerance = cache.config.model.audit.probability_tolerance
    for (name, version, policy_version), rows in groups.items():
        for i, result in zip(
            rows,
            _replay_group(cache, name, version, policy_version, [records[i] for i in rows], tolerance),
            strict=True,
        ):
            result.experiment_arm = records[i].get("experiment_arm")
            out[i] = result
    return [result for result in out if result is not None]


def _replay_group(
    cache: VersionCache,
    name: str,
    version: str,
    policy_version: str,
    records: list[Mapping[str, Any]],
    tolerance: float,
) -> list[RecordReplay]:
    def refused(record: Mapping[str, Any], error: str) -> RecordReplay:
        return RecordReplay(str(record["request_id"]), version, policy_version, "not_replayable", error=error)

    try:
        model = cache.model(name, version)
        engine = DecisionEngine(model, cache.policy(policy_version))
    except Exception as exc:
        return [refused(record, f"{type(exc).__name__}: {exc}") for record in records]
    inputs: list[dict[str, Any]] = []
    usable: list[int] = []
    results: list[RecordReplay] = []
    for i, record in enumerate(records):
        problem = _input_problem(model, record)
        results.append(
            refused(record, problem)
            if problem
            else RecordReplay(str(record["request_id"]), version, policy_version, "identical")
        )
        if problem is None:
            inputs.append({spec.name: record[spec.name] for spec in model.schema.inputs})
            usable.append(i)
    if inputs:
        assessments = engine.assess(inputs, with_reasons=True)
        for i, assessment in zip(usable, assessments, strict=True):
            _compare(results[i], records[i], assessment, tolerance)
    return results


def _input_problem(model: ScoringModel, record: Mapping[str, Any]) -> str | None:
    """Why a logged record cannot be re-scored (an input dropped, hashed or not valid), or None."""
    for spec in model.schema.inputs:
        value = record.get(spec.name)
        if value is None:
            return f"input field {spec.name!r} is not in the logged record (dropped by the log's privacy settings?)"
        if spec.type == "categorical":
            if value not in spec.codes:
                return f"input field {spec.name!r}: logged value is not one of its codes (hashed, or altered)"
        elif not isinstance(value, int) or not (spec.min <= value <= spec.max):
            return f"input field {spec.name!r}: logged value {value!r} is outside its range (altered?)"
    return None


def _compare(result: RecordReplay, record: Mapping[str, Any], assessment: Any, tolerance: float) -> None:
    replayed = {
        "probability": assessment.probability,
        "score": assessment.score,
        "risk_band": assessment.band,
        "decision": assessment.decision,
        "reasons": [reason.code for reason in assessment.reasons],
    }
    result.replayed = replayed
    logged_reasons = list(record.get("reasons") or [])
    # a request made with ?reasons=false logged no reasons: nothing to compare them with
    result.reasons_compared = bool(logged_reasons) or not replayed["reasons"]
    for key in COMPARED:
        logged = logged_reasons if key == "reasons" else record.get(key)
        if key == "decision" and record.get("model_decision"):
            logged = record["model_decision"]  # referred while automation was paused: the model's own is replayed
        if key == "reasons" and not result.reasons_compared:
            continue
        if key == "probability":
            same = logged is not None and math.isfinite(logged) and abs(float(logged) - replayed[key]) <= tolerance
        else:
            same = logged == replayed[key]
        if not same:
            result.differences[key] = {"logged": logged, "replayed": replayed[key]}
    if result.differences:
        result.status = "different"


def summarise(results: Iterable[RecordReplay]) -> dict[str, Any]:
    """Counts by status and the list of records that were not identical."""
    results = list(results)
    counts = {
        status: sum(r.status == status for r in results) for status in ("identical", "different", "not_replayable")
    }
    return {
        "records": len(results),
        **counts,
        "differences": [r.to_json() for r in results if not r.identical],
    }
