"""Training data beyond the one file: out-of-time splits, and production (logged applicants + outcomes).

In the core because training (``pipelines/train.py``) and the promotion gates
(``credit_risk.lifecycle``, run by a job or by the service's admin route) must
cut the same holdout. ``training_data`` is what training calls: the configured file
with a random stratified holdout (as before), the file with an out-of-time
holdout when ``data.time_column`` is set, or, with ``source=production``, the
logged applicants whose decisions have matured and have an outcome, the most
recent period as the holdout. ``gate_split`` gives promotion the same kind of
holdout the challenger was trained against.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pyarrow.compute as pc
from mlflow.entities.model_registry import ModelVersion

from credit_risk import registry
from credit_risk.config import ProjectConfig, Settings
from credit_risk.data import Split, file_digest, load_applicants, load_split
from credit_risk.decision_log.format import log_schema
from credit_risk.decision_log.paths import read_dirs, resolve_log_dir
from credit_risk.outcomes.decisions import DECISION_COLUMNS, decision_schema
from credit_risk.outcomes.join import matured_decisions
from credit_risk.outcomes.paths import resolve_outcomes_dir
from credit_risk.outcomes.table import OutcomeTable
from credit_risk.schema import DataValidationError

log = logging.getLogger(__name__)

SOURCE_TAG = "data_source"


@dataclass(frozen=True)
class TrainingData:
    """A split and where it came from: parameters and tags for the run and the version, and lineage."""

    split: Split
    source: str
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)

    def log(self) -> None:
        """Into the active run: the lineage as parameters and as ``lineage.json``."""
        registry.log_job_params({k: str(v)[:500] for k, v in self.params.items()})
        if self.lineage:
            mlflow.log_dict(self.lineage, "lineage.json")


# ------------------------------------------------------------------ out-of-time


def time_split(
    features: pd.DataFrame, label: pd.Series, times: pd.Series, *, cutoff: datetime | None, fraction: float
) -> tuple[Split, datetime]:
    """The holdout is everything from ``cutoff`` on (default: the latest ``fraction`` of rows by time)."""
    times = pd.to_datetime(times, utc=True).reset_index(drop=True)
    if cutoff is None:
        cutoff = times.sort_values().iloc[int(np.floor(len(times) * (1 - fraction)))].to_pydatetime()
    later = (times >= cutoff).to_numpy()
    if later.all() or not later.any():
        raise DataValidationError(
            f"the out-of-time cut-off {cutoff.isoformat()} leaves an empty "
            f"{'training' if later.all() else 'holdout'} period ({len(times)} rows from {times.min()} to {times.max()})"
        )
    features, label = features.reset_index(drop=True), label.reset_index(drop=True)
    split = Split(
        features[~later].reset_index(drop=True),
        label[~later].reset_index(drop=True),
        features[later].reset_index(drop=True),
        label[later].reset_index(drop=True),
    )
    return split, cutoff


def load_time_split(config: ProjectConfig) -> TrainingData:
    """The data file, checked, with its most recent period as the holdout."""
    data = config.training.data
    path = config.resolve(data.path)
    features, label = load_applicants(path, config.features)
    raw_times = pd.read_csv(path, usecols=lambda c: c == data.time_column, dtype=str, keep_default_na=False)
    if data.time_column not in raw_times.columns:
        raise DataValidationError(f"{path}: missing the time column {data.time_column!r} (data.time_column)")
    times = pd.to_datetime(raw_times[data.time_column], utc=True, errors="coerce", format="ISO8601")
    if times.isna().any():
        first = times.isna().to_numpy().nonzero()[0][:5].tolist()
        raise DataValidationError(
            f"column {data.time_column!r}: {int(times.isna().sum())} row(s) are not ISO dates (first rows: {first})"
        )
    cutoff = datetime.combine(data.cutoff, datetime.min.time(), UTC) if data.cutoff else None
    split, used = time_split(features, label, times, cutoff=cutoff, fraction=data.holdout_fraction)
    log.info("out-of-time holdout: %d rows from %s on, %d earlier rows", len(split.holdout_x), used, len(split.train_x))
    return TrainingData(
        split,
        "file",
        params={"holdout": "out_of_time", "time_column": data.time_column, "holdout_from": used.isoformat()},
        tags={SOURCE_TAG: "file", "holdout_from": used.isoformat()},
    )


# ------------------------------------------------------------------ production


def load_production(config: ProjectConfig, settings: Settings, *, as_of: datetime | None = None) -> TrainingData:
    """Logged applicants with a matured outcome; refuses with the counts when there are too few."""
    data, production = config.training.data, config.training.data.production
    as_of = as_of or datetime.now(UTC)
    maturity = config.model.outcomes.maturity_days
    log_dir = resolve_log_dir(config, settings)
    table = OutcomeTable(resolve_outcomes_dir(config, log_dir))
    privacy = config.model.prediction_log
    unusable = sorted(set(config.features.input_names) & (set(privacy.drop_fields) | set(privacy.hash_fields)))
    if unusable:
        raise DataValidationError(f"cannot train from production: model inputs not logged in clear: {unusable}")
    schema = decision_schema(
        log_schema(config.features, drop_fields=privacy.drop_fields, hash_fields=privacy.hash_fields)
    )
    start = (as_of - timedelta(days=production.lookback_days)).date() if production.lookback_days else None
    joined = matured_decisions(
        read_dirs(config, settings),
        table,
        model_name=config.model.registry.model_name,
        as_of=as_of,
        maturity_days=maturity,
        start=start,
        schema=schema,
        columns=[*DECISION_COLUMNS, *(f.name for f in config.features.fields if f.name not in privacy.drop_fields)],
    )
    labelled = joined.filter(pc.is_valid(joined["label"]))
    events = int(pc.sum(labelled["label"]).as_py() or 0) if labelled.num_rows else 0
    counts = {
        "matured_decisions": joined.num_rows,
        "with_outcome": labelled.num_rows,
        "events": events,
        "non_events": labelled.num_rows - events,
    }
    if (
        labelled.num_rows < production.min_outcomes
        or events < production.min_events
        or counts["non_events"] < production.min_events
    ):
        raise DataValidationError(
            f"too few matured outcomes to train from production (log {log_dir}, outcomes {table.directory}, "
            f"maturity {maturity} days as of {as_of.date()}): {joined.num_rows} matured decision(s), "
            f"{labelled.num_rows} with an outcome ({events} {config.features.target.event}, "
            f"{counts['non_events']} {config.features.target.non_event}); need at least {production.min_outcomes} "
            f"outcomes and {production.min_events} of each"
        )
    frame = labelled.to_pandas()
    features = frame[[f.name for f in config.features.fields]].copy()
    config.features.check_frame(features, fields=config.features.inputs)
    for spec in config.features.fields:
        if spec.type == "integer" and not spec.protected:
            features[spec.name] = features[spec.name].astype(np.int64)
    label = frame["label"].astype(np.int8).rename(config.features.target.name)
    split, cutoff = time_split(features, label, frame["scored_at"], cutoff=None, fraction=data.holdout_fraction)
    file_rows = 0
    if production.include_file:
        file_x, file_y = load_applicants(config.resolve(data.path), config.features)
        file_rows = len(file_x)
        split = Split(
            pd.concat([file_x, split.train_x], ignore_index=True),
            pd.concat([file_y, split.train_y], ignore_index=True),
            split.holdout_x,
            split.holdout_y,
        )
    digest = table.digest()
    versions = {str(k): int(v) for k, v in frame["model_version"].value_counts().sort_index().items()}
    window = [frame["scored_at"].min().isoformat(), frame["scored_at"].max().isoformat()]
    lineage = {
        "source": "production",
        "log_dir": str(log_dir),
        "outcomes_dir": str(table.directory),
        "outcomes_sha256": digest,
        "as_of": as_of.isoformat(timespec="seconds"),
        "maturity_days": maturity,
        "log_window": window,
        "holdout_from": cutoff.isoformat(),
        "counts": {**counts, "train_rows": len(split.train_x), "holdout_rows": len(split.holdout_x)},
        "file_rows": file_rows,
        "file_sha256": file_digest(config.resolve(data.path)) if file_rows else None,
        "decisions_by_version": versions,
    }
    log.info(
        "production data: %d outcomes (%d %s) from %s to %s; holdout from %s (%d rows); versions %s",
        labelled.num_rows,
        events,
        config.features.target.event,
        window[0],
        window[1],
        cutoff,
        len(split.holdout_x),
        versions,
    )
    params = {
        "data_source": "production",
        "log_window_start": window[0],
        "log_window_end": window[1],
        "holdout_from": cutoff.isoformat(),
        "outcomes_sha256": digest,
        "n_outcomes": labelled.num_rows,
        "n_events": events,
        "n_file_rows": file_rows,
        "decision_versions": ",".join(f"v{k}:{v}" for k, v in versions.items()),
    }
    tags = {SOURCE_TAG: "production", "outcomes_sha256": digest, "holdout_from": cutoff.isoformat()}
    return TrainingData(split, "production", params=params, tags=tags, lineage=lineage)


# ------------------------------------------------------------------ what train and promote call


def training_data(config: ProjectConfig, settings: Settings, *, source: str | None = None) -> TrainingData:
    """The split to train on: ``source`` (``file`` | ``production``) or, if None, ``data.source``."""
    chosen = source or config.training.data.source
    if chosen == "production":
        return load_production(config, settings)
    if chosen != "file":
        raise DataValidationError(f"unknown data source {chosen!r}: expected file or production")
    if config.training.data.time_column:
        return load_time_split(config)
    return TrainingData(load_split(config), "file", tags={SOURCE_TAG: "file"})


def gate_split(config: ProjectConfig, settings: Settings, target: ModelVersion) -> Split:
    """The holdout promotion judges on: of the kind the target was trained on (production or file)."""
    source = (target.tags or {}).get(SOURCE_TAG)
    return training_data(config, settings, source=source if source in ("file", "production") else None).split
