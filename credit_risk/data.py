"""Load and check applicant data; split off the holdout no selection step sees (training and the gates)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from credit_risk.config import ProjectConfig
from credit_risk.schema import DataValidationError, FeatureSchema

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    train_x: pd.DataFrame
    train_y: pd.Series
    holdout_x: pd.DataFrame
    holdout_y: pd.Series


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_applicants(path: Path, schema: FeatureSchema) -> tuple[pd.DataFrame, pd.Series]:
    """Read the data file and check it against the schema (codes out, label 1 = default)."""
    if not Path(path).is_file():
        raise DataValidationError(f"{path}: data file not found")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)  # the schema decides what is missing
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{path}: not a readable CSV file: {exc}") from exc
    features, label = schema.decode_source_frame(raw)
    log.info("loaded %d applicants from %s (%.1f%% %s)", len(features), path, 100 * label.mean(), schema.target.event)
    return features, label


def split_holdout(features: pd.DataFrame, label: pd.Series, *, fraction: float, seed: int) -> Split:
    """A stratified, seeded holdout: the same data and seed give the same split."""
    # imported here: scikit-learn (with SciPy) costs a second at import, and the jobs and the service
    # that only read a Split never split
    from sklearn.model_selection import train_test_split

    train_x, holdout_x, train_y, holdout_y = train_test_split(
        features, label, test_size=fraction, stratify=label, random_state=seed
    )
    return Split(
        train_x.reset_index(drop=True),
        train_y.reset_index(drop=True),
        holdout_x.reset_index(drop=True),
        holdout_y.reset_index(drop=True),
    )


def load_split(config: ProjectConfig) -> Split:
    """The configured data file, checked and split."""
    features, label = load_applicants(config.resolve(config.training.data.path), config.features)
    return split_holdout(features, label, fraction=config.training.data.holdout_fraction, seed=config.training.seed)
