"""Data tier: the committed data set matches the schema and the documented facts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from credit_risk.config import DEFAULT_CONFIG_DIR, PROJECT_ROOT, load_project_config
from credit_risk.data import load_applicants, split_holdout
from credit_risk.schema import DataValidationError

pytestmark = pytest.mark.data

DATA = PROJECT_ROOT / "data" / "german_credit.csv"


@pytest.fixture(scope="module")
def schema():
    return load_project_config(DEFAULT_CONFIG_DIR).features


def test_data_set_has_1000_applicants_and_30_percent_defaults(schema) -> None:
    features, label = load_applicants(DATA, schema)
    assert len(features) == 1000
    assert int(label.sum()) == 300, "the documented 700 good / 300 bad split"


def test_every_category_in_the_schema_occurs_in_the_data(schema) -> None:
    features, _ = load_applicants(DATA, schema)
    for spec in schema.fields:
        if spec.type == "categorical":
            assert set(features[spec.name]) == set(spec.codes), spec.name


def test_integer_fields_lie_inside_their_declared_range(schema) -> None:
    features, _ = load_applicants(DATA, schema)
    for spec in schema.fields:
        if spec.type == "integer":
            assert features[spec.name].between(spec.min, spec.max).all(), spec.name


def test_protected_attributes_are_not_model_inputs(schema) -> None:
    assert not {"personal_status_and_sex", "age_in_years", "foreign_worker"} & set(schema.input_names)
    assert len(schema.input_names) == 17


def test_holdout_split_is_stratified_and_repeatable(schema) -> None:
    features, label = load_applicants(DATA, schema)
    a = split_holdout(features, label, fraction=0.2, seed=42)
    b = split_holdout(features, label, fraction=0.2, seed=42)
    assert len(a.holdout_x) == 200 and a.holdout_y.mean() == pytest.approx(0.3)
    pd.testing.assert_frame_equal(a.holdout_x, b.holdout_x)


def test_provenance_is_kept_next_to_the_data() -> None:
    text = (PROJECT_ROOT / "data" / "README.md").read_text()
    assert "Hofmann" in text and "CC BY 4.0" in text


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.drop(columns=["purpose"]), r"missing column\(s\): purpose"),
        (
            lambda d: d.assign(purpose=d["purpose"].where(d.index > 4, "holiday")),
            r"column 'purpose': 5 row\(s\) break the rule: must be one of",
        ),
        (
            lambda d: d.assign(credit_amount=d["credit_amount"].astype(str).where(d.index != 9, "lots")),
            r"column 'credit_amount': 1 row\(s\) break the rule: must be an integer",
        ),
        (
            lambda d: d.assign(creditability=d["creditability"].where(d.index > 1, "unknown")),
            r"column 'creditability': 2 row\(s\) break the rule: must be one of \['bad', 'good'\]",
        ),
    ],
)
def test_a_bad_data_file_names_column_rows_and_rule(tmp_path: Path, schema, edit, message: str) -> None:
    bad = tmp_path / "bad.csv"
    edit(pd.read_csv(DATA, dtype=str)).to_csv(bad, index=False)
    with pytest.raises(DataValidationError, match=message):
        load_applicants(bad, schema)


def test_missing_data_file_is_named(tmp_path: Path, schema) -> None:
    with pytest.raises(DataValidationError, match="data file not found"):
        load_applicants(tmp_path / "nope.csv", schema)
