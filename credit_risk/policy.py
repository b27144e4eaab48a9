"""The decision policy as a recorded, versioned thing: one version string always means one policy.

The policy is what turns a probability into a decision: the decision thresholds, the risk
bands, the scorecard scaling and the maximum number of reasons. It is recorded in MLflow
(experiment ``audit.policy_experiment``, one run per ``policy_version``, the policy's canonical
JSON and its SHA-256 as tags) the first time a service starts with it. A service that starts
with a different policy under a version string already recorded is refused, and replay reads
the recorded policy back (its digest checked), so an old decision is re-made with the policy
that made it, whatever the configuration says today.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from mlflow.tracking import MlflowClient
from pydantic import BaseModel, ConfigDict, Field

from credit_risk import registry
from credit_risk.config import DecisionPolicy, ModelConfig, RiskBand, ScorecardConfig

POLICY_TAG = "credit_risk.policy_version"
DIGEST_TAG = "policy_sha256"
JSON_TAG = "policy_json"
_SAFE_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")


class PolicyError(RuntimeError):
    """A policy cannot be recorded or read back; the message says why."""


class PolicyConflictError(PolicyError):
    """A different policy is already recorded under the same version string."""


class PolicySnapshot(BaseModel):
    """Everything the decision engine takes from configuration (it accepts this in place of ModelConfig)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    decision: DecisionPolicy
    scorecard: ScorecardConfig
    risk_bands: tuple[RiskBand, ...] = Field(min_length=1)

    @classmethod
    def of(cls, config: ModelConfig) -> PolicySnapshot:
        return cls(decision=config.decision, scorecard=config.scorecard, risk_bands=config.risk_bands)

    @property
    def version(self) -> str:
        return self.decision.policy_version

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def differences(old: PolicySnapshot, new: PolicySnapshot) -> list[str]:
    """The keys whose values differ, as ``key: old -> new`` lines."""
    flat_old, flat_new = _flatten(old.model_dump(mode="json")), _flatten(new.model_dump(mode="json"))
    return [
        f"{key}: {flat_old.get(key)!r} -> {flat_new.get(key)!r}"
        for key in sorted(set(flat_old) | set(flat_new))
        if flat_old.get(key) != flat_new.get(key)
    ]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    if isinstance(value, list):
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}{i}."))
        return out
    return {prefix.rstrip("."): value}


def _check_version(version: str) -> None:
    if not _SAFE_VERSION.match(version):
        raise PolicyError(f"decision.policy_version {version!r}: letters, digits and . _ : - only (up to 100)")


def record_policy(client: MlflowClient, config: ModelConfig) -> tuple[PolicySnapshot, bool]:
    """Record the configured policy under its version the first time; refuse a changed one.

    Returns ``(policy, created)``. Raises :class:`PolicyConflictError` naming every changed key
    when the version string is already recorded with another policy.
    """
    policy = PolicySnapshot.of(config)
    _check_version(policy.version)
    run, created = registry.first_tagged_run(
        client,
        config.audit.policy_experiment,
        {POLICY_TAG: policy.version},
        run_name=f"policy {policy.version}",
    )
    if created:
        client.set_tag(run.info.run_id, JSON_TAG, policy.canonical_json())
        client.set_tag(run.info.run_id, DIGEST_TAG, policy.digest())
        return policy, True
    recorded = _read(client, run)
    if recorded is None:  # another process created the run and is writing its tags right now
        client.set_tag(run.info.run_id, JSON_TAG, policy.canonical_json())
        client.set_tag(run.info.run_id, DIGEST_TAG, policy.digest())
        recorded = _read(client, client.get_run(run.info.run_id))
    if recorded is None or recorded.digest() != policy.digest():
        changed = differences(recorded, policy) if recorded else ["(recorded policy unreadable)"]
        raise PolicyConflictError(
            f"decision policy {policy.version!r} is already recorded (run {run.info.run_id}) with other values; "
            f"give the changed policy a new decision.policy_version. Changed: " + "; ".join(changed)
        )
    return policy, False


def load_policy(client: MlflowClient, experiment: str, version: str) -> PolicySnapshot:
    """The policy recorded under ``version``, its digest checked; PolicyError when unknown or altered."""
    _check_version(version)
    run = registry.find_tagged_run(client, experiment, {POLICY_TAG: version})
    if run is None:
        raise PolicyError(f"decision policy {version!r} was never recorded")
    policy = _read(client, run)
    if policy is None:
        raise PolicyError(f"decision policy {version!r}: its record (run {run.info.run_id}) is incomplete")
    return policy


def _read(client: MlflowClient, run: Any) -> PolicySnapshot | None:
    tags = client.get_run(run.info.run_id).data.tags
    text, digest = tags.get(JSON_TAG), tags.get(DIGEST_TAG)
    if text is None or digest is None:
        return None
    policy = PolicySnapshot.model_validate_json(text)
    if policy.digest() != digest:
        raise PolicyError(f"decision policy record {run.info.run_id}: its JSON does not match its recorded digest")
    return policy
