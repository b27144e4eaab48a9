"""The version to score with: resolved, its download verified, and its outputs as Arrow columns."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from credit_risk import registry
from credit_risk.config import ModelConfig, RegistryConfig
from credit_risk.decision import DECISIONS, DecisionEngine
from credit_risk.scoring import ScoringModel
from credit_risk.trees import FastModel, TreeEnsemble, UnsupportedModelError
from credit_risk.trees.kernels import top_reasons

log = logging.getLogger(__name__)


def resolve_version(client: MlflowClient, reg: RegistryConfig, ref: str) -> ModelVersion:
    """``ref`` is a version number (``"3"``) or an alias (``"production"``, ``"@challenger"``)."""
    ref = ref.strip()
    if ref.isdigit():
        version = registry.get_version(client, reg.model_name, ref)
        if version is None:
            raise registry.RegistryError(f"version {ref} of {reg.model_name!r} does not exist")
        return version
    alias = ref.removeprefix("@")
    version = registry.version_for_alias(client, reg.model_name, alias)
    if version is None:
        raise registry.RegistryError(f"no version of {reg.model_name!r} holds the alias {alias!r}")
    return version


def fetch_verified_model(client: MlflowClient, version: ModelVersion, destination: Path) -> Path:
    """Download the version's model folder and refuse it unless its digest matches the registered one."""
    model_dir = registry.download_version(client, version.name, version.version, destination)
    expected = (version.tags or {}).get(registry.ARTIFACT_DIGEST_TAG)
    actual = registry.directory_digest(model_dir)
    if expected is None:
        raise registry.RegistryError(
            f"version {version.version} of {version.name!r} has no {registry.ARTIFACT_DIGEST_TAG} tag: "
            "refusing to score"
        )
    if actual != expected:
        raise registry.RegistryError(
            f"version {version.version} of {version.name!r}: artifact digest {actual[:12]}... does not match the "
            f"registered {expected[:12]}...: refusing to score"
        )
    return model_dir


# ------------------------------------------------------------------ decisions, vectorised


def contributions_like_the_service(model: ScoringModel, config: ModelConfig) -> Callable[[np.ndarray], np.ndarray]:
    """Per-field contributions computed exactly as the service computes them for one applicant.

    With the numpy tree runtime configured (``serving.tree_runtime``) and
    verified, that is its TreeSHAP tables (each row on its own, so a row's
    reasons do not depend on its chunk); otherwise XGBoost's ``pred_contribs``.
    """
    if config.serving.tree_runtime != "numpy" or model.booster is None:
        return model.field_contributions
    try:
        return FastModel(model, TreeEnsemble.verified(model)).field_contributions
    except UnsupportedModelError as exc:
        log.warning("numpy tree runtime not used (%s): reasons from XGBoost", exc)
        return model.field_contributions


class DecisionColumns:
    """The :class:`DecisionEngine`'s outputs as Arrow columns, for a whole chunk at once.

    Probabilities come from the model's own predictor (XGBoost's for trees,
    whatever the chunk size), contributions from :func:`contributions_like_the_service`.
    """

    def __init__(self, engine: DecisionEngine, config: ModelConfig, *, reasons: bool = True) -> None:
        self.engine = engine
        self.config = config
        self._max_reasons = config.decision.max_reasons
        self._reason_codes = pa.array([s.reason_code for s in engine.model.encoder.fields], type=pa.string())
        self.contributions = contributions_like_the_service(engine.model, config) if reasons else None

    def reason_lists(self, contributions: np.ndarray) -> pa.ListArray:
        """Per row, the codes of the fields that raised the risk most, largest first (as the engine:
        a stable descending sort, then only positive contributions)."""
        k = min(self._max_reasons, contributions.shape[1])
        order = top_reasons(contributions, k)
        keep = order >= 0
        offsets = np.zeros(len(order) + 1, dtype=np.int32)
        np.cumsum(keep.sum(axis=1), out=offsets[1:])
        values = self._reason_codes.take(pa.array(order[keep], type=pa.int32()))
        return pa.ListArray.from_arrays(pa.array(offsets), values)

    def reasons(self, matrix: np.ndarray) -> pa.ListArray:
        assert self.contributions is not None, "reasons were not asked for"
        return self.reason_lists(self.contributions(matrix))

    def arrow_columns(self, probabilities: np.ndarray) -> dict[str, pa.Array]:
        return {
            "probability": pa.array(probabilities, type=pa.float64()),
            "score": pa.array(self.engine.scores(probabilities), type=pa.int64()),
            "risk_band": pa.DictionaryArray.from_arrays(
                self.engine.band_index(probabilities), list(self.engine.band_names)
            ),
            "decision": pa.DictionaryArray.from_arrays(self.engine.decision_index(probabilities), list(DECISIONS)),
        }
