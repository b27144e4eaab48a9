"""The pages' pure helpers: wording of reasons, the client-side CSV check, error parsing."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from credit_risk.config import load_project_config
from credit_risk.schema import FeatureSchema
from ui.api_client import parse_problems
from ui.present import band_colours, check_upload, chunks, reason_sentence

pytestmark = pytest.mark.code


@pytest.fixture(scope="module")
def schema() -> FeatureSchema:
    return load_project_config().features


def _upload(schema: FeatureSchema, rows: list[dict]) -> pd.DataFrame:
    """A CSV as the Batch page reads it: every cell as text."""
    return pd.DataFrame(rows).astype(str)


def test_integer_reason_reads_as_a_notice_sentence(schema: FeatureSchema) -> None:
    reason = {
        "code": "DUR",
        "field": "duration_in_month",
        "label": "Loan duration (months)",
        "value": 48,
        "value_label": "48",
        "contribution": 0.4,
    }
    sentence = reason_sentence(reason, schema.by_name["duration_in_month"])
    assert sentence == "Loan duration (months) of 48 increased the assessed risk."


def test_categorical_reason_quotes_the_category_label(schema: FeatureSchema) -> None:
    reason = {
        "code": "CHK",
        "field": "status_of_existing_checking_account",
        "label": "Checking account",
        "value": "overdrawn",
        "value_label": "Overdrawn (below 0 DM)",
        "contribution": 0.3,
    }
    sentence = reason_sentence(reason, schema.by_name["status_of_existing_checking_account"])
    assert sentence == 'Checking account "Overdrawn (below 0 DM)" increased the assessed risk.'


def test_valid_rows_become_api_records_with_integers(schema: FeatureSchema) -> None:
    checked = check_upload(_upload(schema, [schema.example_record()]), schema)
    assert checked.problems == [] and checked.record_rows == [1]
    assert checked.records[0]["duration_in_month"] == schema.example_record()["duration_in_month"]
    assert isinstance(checked.records[0]["duration_in_month"], int)


def test_each_bad_value_is_reported_with_row_field_and_rule(schema: FeatureSchema) -> None:
    good = schema.example_record()
    rows = [good, {**good, "duration_in_month": "abc"}, {**good, "purpose": "yacht"}, {**good, "credit_amount": "0"}]
    checked = check_upload(_upload(schema, rows), schema)
    found = {(p.row, p.field, p.rule) for p in checked.problems}
    assert found == {
        (2, "duration_in_month", "must be an integer"),
        (3, "purpose", f"must be one of the codes {list(schema.by_name['purpose'].codes)}"),
        (4, "credit_amount", "must be in [1, 1000000]"),
    }
    assert checked.record_rows == [1], "only the good row is sent for scoring"


def test_blank_protected_field_is_optional_but_blank_input_is_not(schema: FeatureSchema) -> None:
    protected = schema.protected_fields[0].name
    required = schema.inputs[0].name
    rows = [{**schema.example_record(), protected: ""}, {**schema.example_record(), required: ""}]
    checked = check_upload(_upload(schema, rows), schema)
    assert checked.record_rows == [1] and protected not in checked.records[0]
    assert [(p.row, p.field, p.rule) for p in checked.problems] == [(2, required, "is required")]


def test_missing_required_column_refuses_the_file(schema: FeatureSchema) -> None:
    frame = _upload(schema, [schema.example_record()]).drop(columns=["purpose"])
    checked = check_upload(frame, schema)
    assert checked.records == [] and checked.file_problems == ["missing required column(s): purpose"]


def test_unknown_columns_are_ignored_and_named(schema: FeatureSchema) -> None:
    frame = _upload(schema, [{**schema.example_record(), "customer_id": "42"}])
    checked = check_upload(frame, schema)
    assert checked.ignored_columns == ["customer_id"] and "customer_id" not in checked.records[0]


def test_batch_422_rows_and_fields_are_read_from_the_detail() -> None:
    detail = [
        {"loc": ["body", "applicants", 3, "purpose"], "field": "purpose", "msg": "bad code", "type": "enum", "row": 3}
    ]
    (problem,) = parse_problems(detail)
    assert (problem.row, problem.field, problem.message) == (3, "purpose", "bad code")


def test_band_colours_run_from_green_to_red() -> None:
    colours = band_colours(["A", "B", "C", "D", "E", "F"])
    assert colours["A"] == "#1a7f37" and colours["F"] == "#c62828"


def test_chunks_respect_both_the_count_and_the_body_size() -> None:
    records = [{"name": "x" * 90, "i": i} for i in range(25)]  # about 110 bytes each in JSON
    pieces = list(chunks(records, max_items=10, max_bytes=600))
    assert [offset for offset, _ in pieces] == [0, 5, 10, 15, 20]
    assert all(len(json.dumps({"applicants": list(piece)})) <= 600 for _, piece in pieces)
    assert [r for _, piece in pieces for r in piece] == records
    assert [len(p) for _, p in chunks(records, max_items=3, max_bytes=10_000)][:2] == [3, 3]
