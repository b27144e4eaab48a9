"""The pages' pure helpers: wording of reasons, the client-side CSV check, error parsing."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from credit_risk.config import PROJECT_ROOT, load_project_config
from ui.api_client import parse_problems
from ui.form_schema import FormSchema, read_schema
from ui.present import (
    BAND_PALETTE,
    DECISION_COLOURS,
    PERCENT_FORMAT,
    band_colours,
    contrast_ratio,
    decision_word,
    group_sort_key,
    percent,
    reason_sentence,
    text_colour_on,
)
from ui.uploads import check_upload, chunks, detect_separator, rejects_frame, results_frame

pytestmark = pytest.mark.code


@pytest.fixture(scope="module")
def schema() -> FormSchema:
    """The project's schema as the UI reads it from ``GET /v1/model``."""
    return read_schema({"feature_schema": json.loads(load_project_config().features.to_json())})


def _upload(schema: FormSchema, rows: list[dict]) -> pd.DataFrame:
    """A CSV as the Batch page reads it: every cell as text."""
    return pd.DataFrame(rows).astype(str)


def test_integer_reason_reads_as_a_notice_sentence(schema: FormSchema) -> None:
    reason = {
        "code": "DUR",
        "field": "duration_in_month",
        "label": "Loan duration (months)",
        "value": 48,
        "value_label": "48",
        "contribution": 0.4,
    }
    sentence = reason_sentence(reason, schema.by_name["duration_in_month"])
    assert sentence == "Loan duration (months) is 48, which raised the assessed risk."


def test_categorical_reason_quotes_the_category_label(schema: FormSchema) -> None:
    reason = {
        "code": "CHK",
        "field": "status_of_existing_checking_account",
        "label": "Checking account",
        "value": "overdrawn",
        "value_label": "Overdrawn (below 0 DM)",
        "contribution": 0.3,
    }
    sentence = reason_sentence(reason, schema.by_name["status_of_existing_checking_account"])
    assert sentence == 'Checking account is "Overdrawn (below 0 DM)", which raised the assessed risk.'


def test_valid_rows_become_api_records_with_integers(schema: FormSchema) -> None:
    checked = check_upload(_upload(schema, [schema.example_record()]), schema)
    assert checked.problems == [] and checked.record_rows == [1]
    assert checked.records[0]["duration_in_month"] == schema.example_record()["duration_in_month"]
    assert isinstance(checked.records[0]["duration_in_month"], int)


def test_each_bad_value_is_reported_with_row_field_and_rule(schema: FormSchema) -> None:
    good = schema.example_record()
    rows = [good, {**good, "duration_in_month": "abc"}, {**good, "purpose": "yacht"}, {**good, "credit_amount": "0"}]
    checked = check_upload(_upload(schema, rows), schema)
    found = {(p.row, p.field, p.rule) for p in checked.problems}
    purposes = "; ".join(c.label for c in schema.by_name["purpose"].choices)
    assert found == {
        # the rule table's words for people (credit_risk.rules), with what was entered
        (2, "duration_in_month", "Enter a whole number (you entered abc)"),
        (3, "purpose", f"Choose one of: {purposes} (you entered yacht)"),
        (4, "credit_amount", "Enter a whole number from 1 to 1000000 (you entered 0)"),
    }
    assert checked.record_rows == [1], "only the good row is sent for scoring"


def test_blank_protected_field_is_optional_but_blank_input_is_not(schema: FormSchema) -> None:
    protected = schema.protected_fields[0].name
    required = schema.inputs[0].name
    rows = [{**schema.example_record(), protected: ""}, {**schema.example_record(), required: ""}]
    checked = check_upload(_upload(schema, rows), schema)
    assert checked.record_rows == [1] and checked.records[0][protected] is None, "not provided: sent as null"
    assert [(p.row, p.field, p.rule) for p in checked.problems] == [(2, required, "Enter a value: it is required")]


def test_missing_required_column_refuses_the_file(schema: FormSchema) -> None:
    frame = _upload(schema, [schema.example_record()]).drop(columns=["purpose"])
    checked = check_upload(frame, schema)
    assert checked.records == [] and checked.file_problems == ["missing required column: purpose"]


def test_unknown_columns_are_ignored_and_named(schema: FormSchema) -> None:
    frame = _upload(schema, [{**schema.example_record(), "customer_id": "42"}])
    checked = check_upload(frame, schema)
    assert checked.ignored_columns == ["customer_id"] and "customer_id" not in checked.records[0]


def test_the_id_column_is_carried_and_sent_as_the_applicant_id(schema: FormSchema) -> None:
    frame = _upload(schema, [{"customer_id": "C-7", **schema.example_record()}])
    checked = check_upload(frame, schema, id_column="customer_id")
    assert checked.ignored_columns == [] and checked.ids == {1: "C-7"} and "customer_id" not in checked.records[0]
    assert checked.records[0]["applicant_id"] == "C-7", "the decision is logged under the file's id"


def test_an_id_the_service_would_refuse_is_a_row_problem_in_words(schema: FormSchema) -> None:
    frame = _upload(schema, [{"customer_id": "C 7", **schema.example_record()}])
    checked = check_upload(frame, schema, id_column="customer_id")
    assert checked.records == []
    assert [(p.row, p.field) for p in checked.problems] == [(1, "customer_id")]
    assert "letters, digits" in checked.problems[0].rule


def test_rejected_rows_keep_their_cells_id_and_reasons(schema: FormSchema) -> None:
    good = {"applicant_id": "A1", **schema.example_record()}
    frame = _upload(schema, [good, {**good, "applicant_id": "A2", "duration_in_month": "500"}])
    checked = check_upload(frame, schema, id_column="applicant_id")
    rejects = rejects_frame(frame, checked)
    assert list(rejects.columns[:3]) == ["row", "applicant_id", "problems"]
    assert rejects.to_dict("records")[0]["applicant_id"] == "A2" and "120" in rejects["problems"][0]
    assert rejects["duration_in_month"][0] == "500", "the row as uploaded"


def test_the_results_table_names_reasons_in_words_and_keeps_their_codes_for_the_file(schema: FormSchema) -> None:
    checked = check_upload(_upload(schema, [schema.example_record()]), schema)
    answer = {
        "decision": "decline",
        "probability_of_default": 0.61,
        "score": 540,
        "risk_band": "F",
        "reasons": [
            {"code": "CHK", "field": "status_of_existing_checking_account", "label": "Checking account"},
            {"code": "DUR", "field": "duration_in_month", "label": "Duration"},
        ],
        "model": {"version": "3"},
        "request_id": "r-1",
    }
    line = results_frame(checked, [answer], schema).to_dict("records")[0]
    labels = [schema.by_name[name].plain_label for name in ("status_of_existing_checking_account", "duration_in_month")]
    expected = "; ".join(labels)
    assert line["reasons"] == expected and "CHK" not in line["reasons"], "labels for people, no codes"
    assert line["reason_codes"] == "CHK; DUR", "the codes, for the file other systems read"
    assert line["decision"] == "Declined"


def test_category_labels_are_accepted_where_unambiguous(schema: FormSchema) -> None:
    frame = _upload(schema, [{**schema.example_record(), "purpose": "car (new)", "housing": "Rents"}])
    checked = check_upload(frame, schema)
    record = checked.records[0]
    assert checked.problems == [] and (record["purpose"], record["housing"]) == ("car_new", "rent")


def test_a_semicolon_file_is_read_with_its_separator() -> None:
    assert detect_separator(b"a;b;c\n1;2;3\n") == ";" and detect_separator(b"a,b\n1,2\n") == ","


def test_decimals_and_cleared_values_are_refused_not_rounded(schema: FormSchema) -> None:
    spec = schema.by_name["installment_rate_in_percentage_of_disposable_income"]
    assert spec.parse_text("2.5") == (None, "Enter a whole number (you entered 2.5)")
    assert spec.parse_text("") == (None, "Enter a value: it is required") and spec.parse_text("4") == (4, None)
    assert spec.parse_text("500") == (None, "Enter a whole number from 1 to 4 (you entered 500)")


def test_labels_lose_their_range_hint_in_sentences(schema: FormSchema) -> None:
    reason = {"code": "INS", "field": "installment_rate_in_percentage_of_disposable_income", "value": 4}
    sentence = reason_sentence(reason, schema.by_name[reason["field"]])
    assert sentence == 'Instalment burden is "35% or more", which raised the assessed risk.', "a coded value in words"


def test_one_word_per_decision() -> None:
    assert [decision_word(d) for d in ("approve", "review", "decline")] == ["Approved", "Referred", "Declined"]


def test_every_colour_carries_its_text_at_wcag_aa() -> None:
    for colour in DECISION_COLOURS.values():
        assert contrast_ratio("#ffffff", colour) >= 4.5, colour
    for colour in BAND_PALETTE:
        assert contrast_ratio(text_colour_on(colour), colour) >= 4.5, colour


def test_age_bands_sort_by_age_not_alphabetically() -> None:
    groups = ["25 to 61", "62 and over", "under 25"]
    assert sorted(groups, key=group_sort_key) == ["under 25", "25 to 61", "62 and over"]


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


def test_the_form_and_the_api_break_the_same_rule_each_in_its_own_words(schema: FormSchema) -> None:
    # one rule table: the form's verdict is the API's (credit_risk.rules) for the same value; the API
    # words it for a program, the form for a person, with no engineer notation
    from credit_risk.rules import RuleError, field_rules

    rules = field_rules(load_project_config().features)
    for name, text in (("duration_in_month", "500"), ("duration_in_month", "2.5"), ("purpose", "yacht")):
        _, form_message = schema.by_name[name].parse_text(text)
        with pytest.raises(RuleError) as broken:
            rules[name].parse_text(text)
        assert form_message == broken.value.rule.tell(text), (name, form_message)
        assert "[" not in form_message and "'" not in form_message, form_message


def test_a_second_lenders_decimal_and_optional_fields_read_as_the_api_takes_them() -> None:
    # the home-equity example: `number` fields with decimals, optional fields that are not protected
    from credit_risk.rules import field_rules, plain_number

    features = load_project_config(PROJECT_ROOT / "examples" / "home_equity" / "config").features
    form = read_schema({"feature_schema": json.loads(features.to_json())})
    rules = field_rules(features)
    dti = form.by_name["debt_to_income"]
    assert (dti.type, dti.required, dti.protected) == ("number", False, False)
    assert dti.parse_text("35.75") == (35.75, None) and dti.parse_text("") == (None, None), "blank: not provided"
    too_high = str(float(rules["debt_to_income"].max) + 0.5)
    lo, hi = (plain_number(rules["debt_to_income"].min), plain_number(rules["debt_to_income"].max))
    assert dti.parse_text(too_high) == (None, f"Enter a number from {lo} to {hi} (you entered {too_high})")
    amount = form.by_name["loan_amount"]
    assert amount.required and amount.parse_text("") == (None, "Enter a value: it is required")
    assert amount.parse_text("1200.5") == (None, "Enter a whole number (you entered 1200.5)")


def test_percent_has_one_precision() -> None:
    assert [percent(v) for v in (0.12345, 0.5, 1, 0.0004)] == ["12.3%", "50.0%", "100.0%", "0.0%"]
    assert percent(None) == "n/a" and percent(None, missing="no data") == "no data"
    assert PERCENT_FORMAT == ".1%", "charts' axes and tooltips use the same precision as the text"


# a format that makes a percentage: an f-string or str.format spec ending in % ("{x:.1%}", "{:.0%}"),
# a chart's d3 format ending in % (format="%", format=".0%"), or a table column's format="percent"
_PERCENT_FORMATTING = re.compile(r"""\{[^{}]*:[^{}]*%\}|format\s*=\s*["'][^"']*%["']|format\s*=\s*["']percent["']""")


def test_no_page_formats_a_percentage_itself() -> None:
    """Every page calls ui.present.percent (or PERCENT_FORMAT): one precision everywhere."""
    found = [
        f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}"
        for path in sorted((PROJECT_ROOT / "ui").rglob("*.py"))
        if path.name != "present.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if _PERCENT_FORMATTING.search(line)
    ]
    assert not found, "percentages formatted outside ui.present.percent:\n" + "\n".join(found)
