"""The decision record's one definition: the log's columns, the log record and the answer all come from it."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from credit_risk.config import load_project_config
from credit_risk.decision_log.format import FIXED_COLUMNS, NOT_NULL, arrow_type, log_schema, to_table
from credit_risk.decision_log.reader import read_file_rows, read_log
from credit_risk.decision_log.record import FIELDS, log_columns
from credit_risk.outcomes.decisions import read_decisions
from credit_risk.schema import FeatureSchema
from tests.support.decision_records import AT, decision_record

pytestmark = pytest.mark.code

SCHEMA: FeatureSchema = load_project_config().features

# log_schema_version 1 as the code before the one definition wrote it (credit_risk/decision_log/format.py):
# a frozen copy, so a change to the definition that would stop old logs from reading is caught here
VERSION_1_LEADING = (
    ("log_schema_version", pa.int16()),
    ("request_id", pa.string()),
    ("batch_id", pa.string()),
    ("applicant_id", pa.string()),
    ("scored_at", pa.timestamp("us", tz="UTC")),
    ("model_name", pa.string()),
    ("model_version", pa.string()),
)
VERSION_1_TRAILING = (
    ("probability", pa.float64()),
    ("score", pa.int64()),
    ("risk_band", pa.string()),
    ("decision", pa.string()),
    ("decision_policy_version", pa.string()),
    ("reasons", pa.list_(pa.string())),
    ("latency_ms", pa.float64()),
    ("model_decision", pa.string()),
    ("experiment_id", pa.string()),
    ("experiment_arm", pa.string()),
    ("shadow_version", pa.string()),
    ("shadow_probability", pa.float64()),
    ("shadow_score", pa.int64()),
    ("shadow_risk_band", pa.string()),
    ("shadow_decision", pa.string()),
)
VERSION_1_NOT_NULL = {"log_schema_version", "request_id", "scored_at", "model_name", "model_version", "probability"}


def answer_keys(answer: dict[str, Any]) -> set[str]:
    """The answer's keys, an object's as ``object.key`` (reasons and recourse are lists: their own models)."""
    keys = set()
    for key, value in answer.items():
        if isinstance(value, dict):
            keys |= {f"{key}.{inner}" for inner in value}
        else:
            keys.add(key)
    return keys


def test_the_fixed_columns_keep_log_schema_version_1s_order_types_and_nullability() -> None:
    schema = log_schema(SCHEMA)
    fields = list(schema)
    leading, trailing = fields[: len(VERSION_1_LEADING)], fields[len(fields) - len(VERSION_1_TRAILING) :]
    assert [(f.name, f.type) for f in leading] == list(VERSION_1_LEADING)
    assert [(f.name, f.type) for f in trailing] == list(VERSION_1_TRAILING)
    assert NOT_NULL == VERSION_1_NOT_NULL
    assert {f.name for f in leading + trailing if not f.nullable} == VERSION_1_NOT_NULL
    assert schema.metadata[b"log_schema_version"] == b"1"


def test_a_log_file_written_in_log_schema_version_1s_format_still_reads(tmp_path: Path) -> None:
    fields = [pa.field(name, kind, nullable=name not in VERSION_1_NOT_NULL) for name, kind in VERSION_1_LEADING]
    fields += [pa.field(spec.name, arrow_type(spec)) for spec in SCHEMA.fields]
    fields += [pa.field(name, kind, nullable=name not in VERSION_1_NOT_NULL) for name, kind in VERSION_1_TRAILING]
    row = {
        **SCHEMA.example_record(),
        "log_schema_version": 1,
        "request_id": "old-1",
        "batch_id": None,
        "applicant_id": "app-1",
        "scored_at": AT,
        "model_name": "credit-risk",
        "model_version": "1",
        "probability": 0.2,
        "score": 640,
        "risk_band": "B",
        "decision": "approve",
        "decision_policy_version": "policy-1",
        "reasons": ["DUR"],
        "latency_ms": 0.4,
        "experiment_id": "exp-0",
        "experiment_arm": "champion",
    }
    old = pa.Table.from_pylist([row], schema=pa.schema(fields, metadata={"log_schema_version": "1"}))
    folder = tmp_path / "date=2026-03-04"
    folder.mkdir()
    pq.write_table(old, folder / "part-old.parquet")

    table = read_log(
        tmp_path, log_schema(SCHEMA), start=date(2026, 3, 4), end=date(2026, 3, 4), model_name="credit-risk"
    )
    assert table.to_pylist() == [{**{name: None for name in table.column_names}, **row}]
    decisions = read_decisions(tmp_path, model_name="credit-risk").to_pylist()
    assert [(d["request_id"], d["applicant_id"], d["probability"]) for d in decisions] == [("old-1", "app-1", 0.2)]
    rows = read_file_rows(folder / "part-old.parquet", ["request_id", "model_decision", "experiment_arm"])
    assert rows == [{"request_id": "old-1", "model_decision": None, "experiment_arm": "champion"}]


def test_the_log_record_has_every_fixed_column_but_the_format_version_and_the_applicants_fields() -> None:
    record = decision_record()._replace(shadow_version="4", shadow_probability=0.3, shadow_score=600)
    logged = record.to_log()
    assert set(logged) == (FIXED_COLUMNS - {"log_schema_version"}) | set(record.inputs)
    assert logged["reasons"] == ["DUR", "CHK"], "the log keeps the reasons' codes, largest first"
    assert logged["scored_at"] == AT and logged["probability"] == 0.42


def test_a_decision_records_log_record_becomes_one_row_of_the_log_schema() -> None:
    record = decision_record()
    table = to_table([record.to_log()], log_schema(SCHEMA))
    (row,) = table.to_pylist()
    assert row["log_schema_version"] == 1
    assert (row["request_id"], row["model_version"], row["decision"], row["model_decision"]) == (
        "req-1",
        "3",
        "review",
        "decline",
    )
    assert row["scored_at"] == AT
    assert row["duration_in_month"] == record.inputs["duration_in_month"]


def test_null_optional_columns_are_left_out_of_the_log_record() -> None:
    logged = decision_record(
        model_decision=None, experiment_id=None, experiment_arm=None, experiment_mode=None
    ).to_log()
    absent = {"model_decision", "experiment_id", "experiment_arm", "shadow_version", "shadow_decision"}
    assert not absent & set(logged), "null optional columns keep the write-ahead line short"


def test_the_answer_has_exactly_the_definitions_answer_keys() -> None:
    answer = decision_record().to_answer()
    expected = {f.answer for f in FIELDS if f.answer is not None} - {"case"}  # a case is named once it opens
    assert answer_keys(answer) == expected


def test_the_answer_shows_the_decision_and_the_models_own_while_paused() -> None:
    answer = decision_record().to_answer()
    assert answer["decision"] == "review"
    assert answer["automation"] == {"mode": "paused", "model_decision": "decline"}
    same = decision_record(model_decision=None, decision="review").to_answer()
    assert same["automation"]["model_decision"] == "review", "the model referred too: its own decision is review"


def test_the_answer_reads_scored_at_as_utc_iso_text_to_the_millisecond() -> None:
    assert decision_record().to_answer()["scored_at"] == "2026-03-04T12:30:15.123Z"


def test_a_shadow_experiment_is_in_the_log_but_not_in_the_answer() -> None:
    record = decision_record(experiment_arm="champion", experiment_mode="shadow")._replace(
        shadow_version="4",
        shadow_decision="approve",
    )
    assert "experiment" not in record.to_answer()
    logged = record.to_log()
    assert (logged["experiment_id"], logged["experiment_arm"], logged["shadow_decision"]) == (
        "exp-1",
        "champion",
        "approve",
    )


def test_a_reader_naming_a_column_the_log_does_not_have_fails_at_once() -> None:
    with pytest.raises(KeyError, match="probabilty"):
        log_columns("request_id", "probabilty")
