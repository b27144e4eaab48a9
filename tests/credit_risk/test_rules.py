"""The rule table: one set of rules and one wording per field, whatever the input's form."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml
from pydantic import ValidationError

from credit_risk.config import PROJECT_ROOT
from credit_risk.decision_log.format import log_schema
from credit_risk.metrics import protected_groups
from credit_risk.rules import FieldRule, field_rules, rules_from_json
from credit_risk.schema import DataValidationError, FeatureSchema, FieldSpec

pytestmark = pytest.mark.code

EXAMPLE = PROJECT_ROOT / "examples" / "home_equity"


def spec(**fields: Any) -> FieldSpec:
    base = {"name": "x", "label": "X", "description": "x.", "reason_code": "X"}
    return FieldSpec.model_validate({**base, **fields})


INTEGER = FieldRule(spec(type="integer", min=1, max=120))
NUMBER = FieldRule(spec(type="number", min=0, max=300, required=False))
CATEGORY = FieldRule(
    spec(
        type="categorical",
        required=False,
        categories=[{"code": "a", "label": "A", "source": ["A", "a1"]}, {"code": "b", "label": "B", "source": "B"}],
    )
)


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        (INTEGER, 24, None),
        (INTEGER, 24.0, None),
        (INTEGER, 1.5, "must be a whole number"),
        (INTEGER, "24", "must be an integer"),
        (INTEGER, True, "must be an integer"),
        (INTEGER, math.nan, "must be an integer"),
        (INTEGER, None, "is required"),
        (INTEGER, 0, "must be in [1, 120]"),
        (INTEGER, 121, "must be in [1, 120]"),
        (NUMBER, 31.25, None),
        (NUMBER, 31, None),
        (NUMBER, None, None),
        (NUMBER, "31.2", "must be a number"),
        (NUMBER, math.inf, "must be a number"),
        (NUMBER, False, "must be a number"),
        (NUMBER, 300.5, "must be in [0, 300]"),
        (NUMBER, 10**400, "must be a number"),
        (INTEGER, 10**400, "must be in [1, 120]"),
        (CATEGORY, "a", None),
        (CATEGORY, None, None),
        (CATEGORY, "A", "must be one of ['a', 'b']"),
        (CATEGORY, 1, "must be one of ['a', 'b']"),
    ],
)
def test_check_words_each_broken_rule_once(rule: FieldRule, value: Any, expected: str | None) -> None:
    assert rule.check(value) == expected


def test_parse_gives_the_api_value() -> None:
    assert INTEGER.parse(24.0) == 24 and type(INTEGER.parse(24.0)) is int
    assert NUMBER.parse(31) == 31.0 and type(NUMBER.parse(31)) is float


CELLS = ["24", " 24 ", "24.0", "1.5", "abc", "", "NA", "0", "1e2", "inf", "-3", "300.5", "12.25"]


@pytest.mark.parametrize("rule", [INTEGER, NUMBER, CATEGORY], ids=["integer", "number", "categorical"])
def test_text_arrow_and_pandas_checks_agree_cell_by_cell(rule: FieldRule) -> None:
    cells = [*CELLS, "a", "b", "A", None]
    by_text = [rule.check_text(cell, ("", "NA")) for cell in cells]
    column = pa.array([None if c in ("", "NA") else c for c in cells], type=pa.string())
    verdict = rule.check_arrow(column)
    messages = [r.message for r in rule.rules]
    by_arrow = [
        messages[verdict.rule[i]] if verdict.bad is not None and verdict.bad[i] else None for i in range(len(cells))
    ]
    assert by_arrow == by_text
    series = pd.Series([None if c in ("", "NA") else (c.strip() if c else c) for c in cells], dtype=object)
    broken = rule.check_series(series)  # a frame read as text is judged as the file's cells are
    by_series = [messages[i] if i >= 0 else None for i in broken]
    assert by_series == by_text


def test_arrow_values_carry_missing_as_nan_and_minus_one() -> None:
    numbers = NUMBER.check_arrow(pa.array([1.5, None, 2.0]))
    assert numbers.bad is None and np.isnan(numbers.values[1]) and numbers.values[0] == 1.5
    codes = CATEGORY.check_arrow(pa.array(["b", None, "a"]))
    assert codes.bad is None and codes.values.tolist() == [1, -1, 0]
    typed = INTEGER.check_arrow(pa.array([5, None], type=pa.int64()))
    assert typed.bad is not None and typed.bad.tolist() == [False, True]


def test_rules_come_from_the_published_schema_json() -> None:
    schema = FeatureSchema.model_validate(yaml.safe_load((EXAMPLE / "config" / "features.yaml").read_text()))
    published = schema.model_dump(mode="json")
    rules = rules_from_json(published)
    assert list(rules) == [f.name for f in schema.fields]
    assert rules["debt_to_income"].check(None) is None
    assert rules["loan_amount"].check(None) == "is required"
    assert rules["debt_to_income"].check(301) == "must be in [0, 300]"
    assert rules_from_json(schema.to_json())["job"].check("manager") is None
    assert published["fields"][0]["min"] == 100 and published["fields"][1]["min"] == 0.0


def test_the_german_schema_keeps_its_rules_and_wording() -> None:
    from credit_risk.config import load_project_config

    rules = field_rules(load_project_config().features)
    assert rules["duration_in_month"].check(999) == "must be in [1, 120]"
    assert all(r.required for name, r in rules.items())


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": "integer", "min": 1.5, "max": 3}, "whole numbers"),
        ({"type": "number", "min": 3, "max": 1}, "min <= max"),
        ({"type": "number", "min": 0, "max": 100, "protected": True}, "needs group_edges"),
        ({"type": "number", "min": 0, "max": 100, "group_edges": [10]}, "protected fields only"),
        ({"type": "number", "min": 0, "max": 100, "protected": True, "group_edges": [30, 20]}, "increasing"),
        (
            {
                "type": "categorical",
                "categories": [
                    {"code": "a", "label": "A", "source": ["x", "y"]},
                    {"code": "b", "label": "B", "source": "y"},
                ],
            },
            "one category only",
        ),
    ],
)
def test_an_inconsistent_field_is_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(**fields)


def test_source_columns_must_differ() -> None:
    with pytest.raises(ValidationError, match="own column"):
        FeatureSchema.model_validate(
            {
                "version": 1,
                "target": {"name": "y", "event": "1", "non_event": "0", "source_column": "X"},
                "fields": [spec(type="integer", min=0, max=1, source_column="X").model_dump()],
            }
        )


def home_equity_schema() -> FeatureSchema:
    return FeatureSchema.model_validate(yaml.safe_load((EXAMPLE / "config" / "features.yaml").read_text()))


def test_a_file_is_read_by_source_column_with_its_missing_markers_and_source_lists() -> None:
    schema = home_equity_schema()
    raw = pd.read_csv(EXAMPLE / "home_equity.csv", dtype=str, keep_default_na=False)
    features, label = schema.decode_source_frame(raw)
    assert list(features.columns) == [f.name for f in schema.fields] and label.name == "defaulted"
    assert features["debt_to_income"].isna().sum() == ((raw["DEBTINC"] == "") | (raw["DEBTINC"] == "NA")).sum()
    assert set(features.loc[raw["REASON"] == "DEBTCON", "loan_reason"]) == {"debt_consolidation"}
    assert features["loan_reason"].isna().sum() > 0 and features["loan_amount"].dtype == np.int64


def test_a_bad_cell_names_the_file_column_the_rows_and_the_rule() -> None:
    schema = home_equity_schema()
    raw = pd.read_csv(EXAMPLE / "home_equity.csv", dtype=str, keep_default_na=False).head(20)
    raw.loc[3, "DEBTINC"] = "lots"
    raw.loc[7, "LOAN"] = ""
    with pytest.raises(
        DataValidationError, match=r"column 'LOAN': 1 row\(s\) break the rule: is required \(first rows: \[7\]\)"
    ):
        schema.decode_source_frame(raw)
    raw.loc[7, "LOAN"] = "5000"
    with pytest.raises(DataValidationError, match=r"column 'DEBTINC': 1 row\(s\) break the rule: must be a number"):
        schema.decode_source_frame(raw)


def test_protected_groups_follow_each_fields_configuration() -> None:
    schema = home_equity_schema()
    frame = pd.DataFrame({"applicant_age": [19.5, 25.0, 61.9, 62.0, None]})
    groups = protected_groups(frame, schema)["applicant_age"].tolist()
    assert groups == ["under 25", "25 to 62", "25 to 62", "62 and over", "not provided"]
    from credit_risk.config import load_project_config

    german = load_project_config().features
    ages = protected_groups(pd.DataFrame({"age_in_years": [24, 25, 61, 62]}), german)["age_in_years"].tolist()
    assert ages == ["under 25", "25 to 61", "25 to 61", "62 and over"]


def test_the_log_has_a_typed_column_per_field_type() -> None:
    schema = log_schema(home_equity_schema())
    assert schema.field("debt_to_income").type == pa.float64() and schema.field("debt_to_income").nullable
    assert schema.field("loan_amount").type == pa.int64() and schema.field("job").type == pa.string()


def test_a_missing_value_reads_as_not_provided() -> None:
    assert home_equity_schema().by_name["job"].describe_value(None) == "not provided"
