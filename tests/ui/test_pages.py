"""Each page in Streamlit's AppTest against the real scoring API serving a real trained model."""

from __future__ import annotations

import json
from collections.abc import Callable
from html import escape
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from credit_risk.schema import FeatureSchema
from tests.conftest import Store, TrainedModel
from tests.support.api import RunningApi, running_api
from tests.support.processes import free_port
from tests.ui.conftest import served_schema
from ui.api_client import ApiClient, RequestRejectedError
from ui.form_schema import read_schema
from ui.present import summary_html

pytestmark = pytest.mark.integration

OpenApp = Callable[..., AppTest]


_schema = served_schema


def _texts(at: AppTest) -> str:
    """Everything written on the page, for 'does it say X' checks."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in (*at.error, *at.warning, *at.info, *at.success)]
    return "\n".join(str(p) for p in parts)


def _chart_tables(chart) -> list[pa.Table]:
    """The data sets an Altair chart sent to the browser (Arrow IPC)."""
    return [pa.ipc.open_stream(d.data.data).read_all() for d in chart.proto.datasets]


def _button(at: AppTest, label: str):
    matches = [b for b in at.button if b.label.startswith(label)]
    assert matches, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return matches[0]


# ------------------------------------------------------------------ Score an applicant


def test_score_form_offers_category_labels_ranges_and_optional_protected_fields(
    api: RunningApi, open_app: OpenApp
) -> None:
    at = open_app(api.url)
    schema = _schema(api)
    checking = at.selectbox(key="applicant.status_of_existing_checking_account")
    assert checking.options == [c.label for c in schema.by_name["status_of_existing_checking_account"].categories]
    assert checking.value is None, "a required category starts unselected, not on its first option"
    dependants = at.selectbox(key="applicant.number_of_people_being_liable_to_provide_maintenance_for")
    assert dependants.options == ["0 to 2", "3 or more"], "a coded number says what each value means"
    duration = at.text_input(key="applicant.duration_in_month")
    assert duration.value in (None, ""), "a required number starts empty"
    assert "1 to 120" in duration.placeholder
    fairness = at.expander[0]
    assert fairness.label == "For fairness monitoring only (optional)"
    inside = {w.key for w in (*fairness.selectbox, *fairness.text_input)}
    assert inside == {f"applicant.{f.name}" for f in schema.protected_fields}
    assert at.selectbox(key="applicant.personal_status_and_sex").value == "__not_provided__"


def _fill(at: AppTest, schema: FeatureSchema, **overrides: object) -> None:
    """Every model input from the schema's example record, with ``overrides``."""
    record = {**schema.example_record(), **overrides}
    for spec in schema.inputs:
        if spec.type == "categorical" or spec.value_labels:  # a coded number is chosen by what it means
            at.selectbox(key=f"applicant.{spec.name}").set_value(record[spec.name])
        else:
            at.text_input(key=f"applicant.{spec.name}").input(str(record[spec.name]))


def test_scoring_shows_what_the_api_answered_with_reasons_and_version(
    api: RunningApi, open_app: OpenApp, trained: TrainedModel
) -> None:
    at = open_app(api.url)
    schema = _schema(api)
    _fill(at, schema, duration_in_month=48, status_of_existing_checking_account="overdrawn")
    _button(at, "Score applicant").click().run()
    assert not at.exception
    record = {
        **schema.example_record(),
        "duration_in_month": 48,
        "status_of_existing_checking_account": "overdrawn",
    }
    record = {k: v for k, v in record.items() if k in {f.name for f in schema.inputs}}
    expected = httpx.post(f"{api.url}/v1/predict", json=record).json()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Probability of default"] == f"{expected['probability_of_default']:.1%}"
    assert metrics["Score"] == str(expected["score"])
    text = _texts(at)
    assert f"Risk band {expected['risk_band']}" in text
    assert expected["reasons"], "this applicant should have reasons"
    for reason in expected["reasons"]:  # a raw code only on hover
        assert f'title="reason code {reason["code"]}"' in text and f"({reason['code']})" not in text
    assert "Loan duration (months) is 48, which raised the assessed risk." in text
    assert f"model version {trained.version.version}" in text


def test_a_decline_shows_what_would_change_the_decision(api: RunningApi, open_app: OpenApp) -> None:
    at = open_app(api.url)
    schema = _schema(api)
    risky = {
        "status_of_existing_checking_account": "overdrawn",
        "duration_in_month": 60,
        "credit_amount": 15000,
        "credit_history": "no_credits_or_all_paid",
        "savings_account_and_bonds": "below_100_dm",
        "installment_rate_in_percentage_of_disposable_income": 4,
    }
    _fill(at, schema, **risky)
    _button(at, "Score applicant").click().run()
    assert not at.exception
    record = {k: v for k, v in {**schema.example_record(), **risky}.items() if k in {f.name for f in schema.inputs}}
    expected = httpx.post(f"{api.url}/v1/predict?recourse=true", json=record).json()
    assert expected["decision"] == "decline" and expected["recourse"], expected
    assert "What would change the decision" in [h.value for h in at.subheader]
    text = _texts(at)
    for alternative in expected["recourse"]:
        word = {"approve": "Approved", "review": "Referred"}[alternative["decision"]]
        assert f"<strong>{word}</strong> with: {alternative['summary']}" in text


def _risky_answer(api: RunningApi, *, query: str) -> dict:
    """The API's answer for a declined applicant (the decline test's), with ``query``."""
    schema = _schema(api)
    risky = {
        "status_of_existing_checking_account": "overdrawn",
        "duration_in_month": 60,
        "credit_amount": 15000,
        "credit_history": "no_credits_or_all_paid",
        "savings_account_and_bonds": "below_100_dm",
        "installment_rate_in_percentage_of_disposable_income": 4,
    }
    record = {k: v for k, v in {**schema.example_record(), **risky}.items() if k in set(schema.input_names)}
    return httpx.post(f"{api.url}/v1/predict{query}", json=record).json()


def test_the_printable_summary_of_a_decline_says_what_would_change_the_decision(api: RunningApi) -> None:
    """The Score page asks with recourse=true and hands the answer to the summary: its alternatives are
    printed in words (the answer's summary sentence), each with the decision it would get."""
    answer = _risky_answer(api, query="?recourse=true")
    assert answer["decision"] == "decline" and answer["recourse"], answer
    page = summary_html(answer, read_schema(httpx.get(f"{api.url}/v1/model").json()), applicant_id=None)
    assert "<h2>What would change the decision</h2>" in page
    for alternative in answer["recourse"]:
        word = {"approve": "Approved", "review": "Referred"}[alternative["decision"]]
        assert f"<li><strong>{word}</strong> with: {escape(alternative['summary'])} (" in page
        assert alternative["changes"][0]["field"] not in page, "a field's code, not its label"


def test_the_printable_summary_says_nothing_of_recourse_when_the_answer_has_none(api: RunningApi) -> None:
    answer = _risky_answer(api, query="")
    page = summary_html(answer, read_schema(httpx.get(f"{api.url}/v1/model").json()), applicant_id=None)
    assert answer["decision"] == "decline" and "What would change the decision" not in page


def test_score_refuses_until_required_fields_are_set(api: RunningApi, open_app: OpenApp) -> None:
    at = open_app(api.url)
    _button(at, "Score applicant").click().run()
    assert not at.exception and at.session_state["score.state"]["result"] is None
    assert any("need attention" in w.value for w in at.warning), [w.value for w in at.warning]


def test_protected_fields_not_provided_are_sent_as_null(api: RunningApi, open_app: OpenApp) -> None:
    at = open_app(api.url)
    _fill(at, _schema(api))
    _button(at, "Score applicant").click().run()
    state = at.session_state["score.state"]
    assert not at.exception and state["error"] is None and not state["refused"]
    assert state["result"]["decision"] in {"approve", "review", "decline"}


# ------------------------------------------------------------------ Batch


def _csv(schema: FeatureSchema, rows: int, *, bad_purpose_row: int | None = None) -> bytes:
    names = [f.name for f in schema.fields]
    lines = [",".join(names)]
    for i in range(rows):
        record = {**schema.example_record(), "duration_in_month": 6 + i % 100}
        if i == bad_purpose_row:
            record["purpose"] = "yacht"
        lines.append(",".join(str(record[n]) for n in names))
    return ("\n".join(lines) + "\n").encode()


def test_batch_shows_bad_rows_before_scoring(api: RunningApi, open_app: OpenApp) -> None:
    at = open_app(api.url, page="batch")
    at.file_uploader[0].set_value(("applicants.csv", _csv(_schema(api), 4, bad_purpose_row=2), "text/csv")).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Rows"], metrics["Valid"], metrics["With errors"]) == ("4", "3", "1")
    problems = at.dataframe[-1].value
    assert problems.to_dict("records")[0]["row"] == 3 and problems.to_dict("records")[0]["field"] == "Purpose"
    assert not [d for d in at.get("download_button") if "results" in str(d.proto.label)], "nothing scored yet"
    assert [d for d in at.get("download_button") if "rejected row" in str(d.proto.label)], "rejects downloadable"


def test_batch_scores_valid_rows_through_the_api_in_chunks(
    api: RunningApi, open_app: OpenApp, trained: TrainedModel
) -> None:
    # 150 applicants are over the service's 64 KB body limit: the page must send several requests.
    at = open_app(api.url, page="batch")
    at.file_uploader[0].set_value(("applicants.csv", _csv(_schema(api), 150, bad_purpose_row=0), "text/csv")).run()
    _button(at, "Score 149 valid rows").click().run()
    service_errors = [e.value for e in at.error if "the schema" not in e.value]
    assert not at.exception and not service_errors, service_errors
    results = at.dataframe[-1].value
    assert list(results.columns[:5]) == ["row", "decision", "probability_of_default", "score", "risk_band"]
    assert set(results["decision"]) <= {"Approved", "Referred", "Declined"}
    assert list(results["row"]) == list(range(2, 151))
    assert list(results["duration_in_month"]) == [6 + i % 100 for i in range(1, 150)], "results in file order"
    assert set(results["model_version"]) == {str(trained.version.version)}
    assert results["probability_of_default"].between(0, 1).all() and results["request_id"].is_unique
    assert any("results" in str(d.proto.label) for d in at.get("download_button"))


def test_batch_refuses_a_file_without_a_required_column(api: RunningApi, open_app: OpenApp) -> None:
    at = open_app(api.url, page="batch")
    at.file_uploader[0].set_value(("applicants.csv", b"purpose\ncar_new\n", "text/csv")).run()
    assert not at.exception
    assert any("missing required column" in e.value for e in at.error)


# ------------------------------------------------------------------ Models


def test_models_page_lists_versions_and_the_production_alias(
    api: RunningApi, open_app: OpenApp, trained: TrainedModel
) -> None:
    at = open_app(api.url, page="models")
    version = str(trained.version.version)
    assert {m.label: m.value for m in at.metric}["`production`"] == f"v{version}"
    versions = at.dataframe[0].value
    row = versions[versions["version"] == version].iloc[0]
    assert "production" in row["aliases"] and 0.5 < float(row["roc_auc_cv_mean"]) < 1
    history = at.dataframe[1].value
    assert "test session model" in set(history["reason"])


def test_models_page_offers_each_versions_validation_report(
    api: RunningApi, open_app: OpenApp, trained: TrainedModel
) -> None:
    from ui.api_client import ApiClient

    at = open_app(api.url, page="models")
    version = str(trained.version.version)
    assert not at.exception and not at.error
    assert at.selectbox(key="models.report_version").value == version, "the served version's report first"
    history = at.dataframe[1].value
    assert f"report of v{version}" in set(history["validation report"]), "each move names the report it was judged on"
    path = next(
        v["validation_report"] for v in ApiClient(api.url).registry()["versions"] if str(v["version"]) == version
    )
    html = ApiClient(api.url).validation_report(path)
    assert f"version {version}</h1>" in html


def test_models_page_shows_the_report_from_its_data_and_runs_none_of_its_html(
    api: RunningApi, open_app: OpenApp, trained: TrainedModel
) -> None:
    """The page holds the admin-token fields: the registry's HTML never goes into it (no iframe, no HTML
    element); the report's sections are Streamlit's own elements, built from the report's data."""
    at = open_app(api.url, page="models")
    assert not at.get("iframe") and not at.get("html"), "no HTML from the registry on the Models page"
    version = str(trained.version.version)
    headings = [m.value for m in at.markdown if m.value.startswith("#### Validation report")]
    assert headings and headings[0].endswith(f"version {version}"), headings
    tables = [frame.value for frame in at.dataframe]
    gates = next(t for t in tables if list(t.columns) == ["gate", "value", "limit", "result"])
    assert set(gates["gate"]) == {"min_auc", "max_brier", "min_disparate_impact"}
    assert set(gates["result"]) <= {"passed", "failed"}


def test_promote_without_token_is_not_sent(api: RunningApi, open_app: OpenApp) -> None:
    at = open_app(api.url, page="models")
    at.text_input(key="promote.reason").set_value("try")
    _button(at, "Promote...").click().run()
    assert any("Enter your admin token in the sidebar" in w.value for w in at.warning), [w.value for w in at.warning]
    assert not [b for b in at.button if b.label.startswith("Confirm")], "nothing to confirm"


def test_a_wrong_admin_token_is_refused_clearly(api: RunningApi, open_app: OpenApp) -> None:
    at = open_app(api.url, page="models")
    at.text_input(key="rollback.reason").set_value("test")
    at.text_input(key="role.token").set_value("not-the-token-0123456789")
    _button(at, "Roll back...").click().run()
    _button(at, "Confirm").click().run()
    assert not at.exception
    assert any("did not accept your role token" in e.value for e in at.error), [e.value for e in at.error]


def test_a_refused_rollback_shows_the_reason(api: RunningApi, open_app: OpenApp) -> None:
    at = open_app(api.url, page="models")
    at.text_input(key="rollback.reason").set_value("nothing to roll back to")
    at.text_input(key="role.token").set_value(api.admin_token)
    _button(at, "Roll back...").click().run()
    confirm = _button(at, "Confirm")
    assert "production: v1 → " in confirm.label, confirm.label
    confirm.click().run()
    assert not at.exception
    refusals = [e.value for e in at.error if "Rollback refused" in e.value]
    assert refusals, [e.value for e in (*at.error, *at.success)]


# ------------------------------------------------------------------ Monitoring


def test_monitoring_says_when_no_summary_exists(api: RunningApi, open_app: OpenApp) -> None:
    at = open_app(api.url, page="monitoring")
    assert any("No monitoring summary exists yet" in i.value for i in at.info), [i.value for i in at.info]
    assert not at.get("vega_lite_chart")


def test_monitoring_draws_the_latest_summary(api: RunningApi, open_app: OpenApp, monitoring_summary: dict) -> None:
    at = open_app(api.url, page="monitoring")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Volume"] == f"{monitoring_summary['volume']:,}"
    assert metrics["Approved"] == f"{monitoring_summary['decision_rates']['approve']:.1%}"
    headings = [h.value for h in at.subheader]
    for heading in (
        "Volume and latency over time",
        "Decision mix",
        "Probability of default: logged applicants against training",
        "Population stability index per feature",
    ):
        assert heading in headings
    charts = at.get("vega_lite_chart")
    assert len(charts) == 5, f"volume, latency, decision mix, score distribution and PSI charts; got {len(charts)}"
    marks = [layer["mark"]["type"] for layer in json.loads(charts[-1].proto.spec)["layer"]]
    assert marks[0] == "bar" and "rule" in marks, f"PSI bars with threshold lines; marks {marks}"
    drawn = [t for t in _chart_tables(charts[-1]) if "threshold" in t.column_names]
    thresholds = monitoring_summary["thresholds"]
    assert drawn and sorted(drawn[0].column("threshold").to_pylist()) == [
        thresholds["psi_moderate"],
        thresholds["psi_major"],
    ]


# ------------------------------------------------------------------ bad states


@pytest.mark.parametrize("page", [None, "batch", "monitoring", "models", "review"])
def test_api_down_gives_a_message_not_a_traceback(open_app: OpenApp, page: str | None) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    at = open_app(closed, page=page)
    assert any("scoring service is not reachable" in e.value for e in at.error), [e.value for e in at.error]


def test_no_model_in_production_gives_a_message(store: Store, tmp_path: Path, open_app: OpenApp) -> None:
    with running_api(store, tmp_path=tmp_path, wait_ready=False) as empty:
        at = open_app(empty.url)
        assert not at.selectbox, "no form without a served model"
        assert any("No model is available for scoring yet" in w.value for w in at.warning), [
            w.value for w in at.warning
        ]


def test_the_client_reads_a_real_422_into_field_and_rule(api: RunningApi) -> None:
    with pytest.raises(RequestRejectedError) as caught:
        ApiClient(api.url).predict({**_schema(api).example_record(), "duration_in_month": 500})
    (problem,) = caught.value.problems
    assert problem.field == "duration_in_month" and "120" in problem.message, str(problem)


def test_a_rejected_field_is_named_next_to_its_input(api: RunningApi, open_app: OpenApp) -> None:
    # The form checks ranges itself, so a refusal comes from a service whose rules differ from the form's;
    # the page is shown the service's own 422 for an out-of-range duration.
    applicant = {**_schema(api).example_record(), "duration_in_month": 500}
    with pytest.raises(RequestRejectedError) as caught:
        ApiClient(api.url).predict(applicant)
    at = open_app(api.url)
    schema = _schema(api)
    _fill(at, schema)
    at.run()
    inputs = {spec.name: at.session_state[f"applicant.{spec.name}"] for spec in schema.fields}
    at.session_state["score.state"] = {"error": caught.value, "inputs": inputs, "attempted": True}
    at.run()
    assert not at.exception
    notes = [m.value for m in at.markdown if "Loan duration (months): the scoring service refused it" in m.value]
    assert notes and "a whole number from 1 to 120" in notes[0], [m.value for m in at.markdown]
    assert any("refused this request" in e.value and "duration_in_month" in e.value for e in at.error)


def test_monitoring_names_what_it_counts_with_labels_and_ordered_groups(
    api: RunningApi, trained: TrainedModel, open_app: OpenApp
) -> None:
    from credit_risk.decision_log.paths import summary_path
    from tests.ui.conftest import score_and_monitor

    schema = _schema(api)
    sexes = schema.by_name["personal_status_and_sex"].codes
    applicants = [
        {**schema.example_record(), "duration_in_month": 6 + i % 40, "age_in_years": (20, 40, 70)[i % 3],
         "personal_status_and_sex": sexes[i % len(sexes)]}
        for i in range(60)
    ]  # fmt: skip
    config = trained.store.config
    try:
        score_and_monitor(api, trained.store, applicants)
        at = open_app(api.url, page="monitoring")
        assert "Share not declined across protected groups" in [h.value for h in at.subheader]
        table = next(d.value for d in at.dataframe if "group" in d.value.columns)
        ages = list(table[table["attribute"] == "Age (years)"]["group"])
        assert ages == ["under 25", "25 to 61", "62 and over"], ages
        groups = set(table[table["attribute"] == "Personal status and sex"]["group"])
        assert groups == {c.label for c in schema.by_name["personal_status_and_sex"].categories}, groups
        assert "{" not in _texts(at), "no raw structures on the page"
    finally:
        summary_path(config.model.monitoring, api.log_dir, config.root).unlink(missing_ok=True)
