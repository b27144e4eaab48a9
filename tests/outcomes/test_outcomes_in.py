"""Outcomes in: the file job and POST /v1/outcomes against decisions the real app logged."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.compute as pc
import pytest
from fastapi.testclient import TestClient

from credit_risk.config import PROJECT_ROOT
from credit_risk.outcomes.decisions import read_decisions
from credit_risk.outcomes.paths import resolve_outcomes_dir
from credit_risk.outcomes.table import OutcomeTable
from pipelines.performance.job import performance
from tests.conftest import TrainedModel
from tests.serving.conftest import ADMIN_TOKEN, app_client

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
COUNT = 40


@dataclass
class Logged:
    client: TestClient
    log_dir: Path
    decisions: pd.DataFrame  # request_id, applicant_id, scored_at
    trained: TrainedModel

    @property
    def table(self) -> OutcomeTable:
        return OutcomeTable(resolve_outcomes_dir(self.trained.store.config, self.log_dir))

    def run_job(self, *args: str) -> subprocess.CompletedProcess[str]:
        store = self.trained.store
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": store.uri,
            "CREDIT_RISK_CONFIG_DIR": str(store.config.config_dir),
            "CREDIT_RISK_LOG_DIR": str(self.log_dir),
            "PYTHONPATH": str(PROJECT_ROOT),
        }
        return subprocess.run(
            [sys.executable, "-m", "pipelines.outcomes", *args],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture(scope="module")
def logged(trained: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    """COUNT applicants scored by the real app, each with an applicant_id, flushed to the log."""
    log_dir = tmp_path_factory.mktemp("outcomes-in") / "predictions"
    applicant = trained.store.config.features.example_record()
    with app_client(trained.store, log_dir) as client:
        for i in range(COUNT):
            response = client.post("/v1/predict", json={**applicant, "applicant_id": f"app-{i}"})
            assert response.status_code == 200, response.text
        name = trained.store.config.model.registry.model_name
        deadline = time.monotonic() + 20
        while (table := read_decisions(log_dir, model_name=name)).num_rows < COUNT:
            assert time.monotonic() < deadline, "the decisions never reached the log"
            time.sleep(0.2)
        decisions = table.select(["request_id", "applicant_id", "scored_at"]).to_pandas()
        yield Logged(
            client, log_dir, decisions.sort_values("applicant_id", key=lambda s: s.str[4:].astype(int)), trained
        )


def _row(logged: Logged, i: int) -> dict[str, Any]:
    return logged.decisions.iloc[i].to_dict()


def _later(row: dict[str, Any], days: int = 30) -> str:
    return (row["scored_at"] + pd.Timedelta(days=days)).isoformat()


def test_the_applicant_id_is_logged_with_the_decision(logged: Logged) -> None:
    assert sorted(logged.decisions["applicant_id"]) == sorted(f"app-{i}" for i in range(COUNT))


def test_each_refused_row_is_named_with_its_rule_and_the_others_are_stored(logged: Logged, tmp_path: Path) -> None:
    r = [_row(logged, i) for i in range(6)]
    rows = [
        {"request_id": r[0]["request_id"], "applicant_id": "", "outcome": "good", "observed_at": _later(r[0])},
        {"request_id": "", "applicant_id": r[1]["applicant_id"], "outcome": "bad", "observed_at": _later(r[1])[:10]},
        {"request_id": "no-such-decision", "applicant_id": "", "outcome": "bad", "observed_at": _later(r[2])},
        {"request_id": r[2]["request_id"], "applicant_id": "", "outcome": "bad", "observed_at": "2001-01-01"},
        {"request_id": r[3]["request_id"], "applicant_id": "", "outcome": "defaulted", "observed_at": _later(r[3])},
        {"request_id": r[4]["request_id"], "applicant_id": "", "outcome": "bad", "observed_at": _later(r[4])},
        {"request_id": r[4]["request_id"], "applicant_id": "", "outcome": "good", "observed_at": _later(r[4])},
        {"request_id": "", "applicant_id": "", "outcome": "good", "observed_at": _later(r[5])},
        {"request_id": r[5]["request_id"], "applicant_id": "", "outcome": "good", "observed_at": "last tuesday"},
    ]
    source, rejects = tmp_path / "outcomes.csv", tmp_path / "rejects.csv"
    pd.DataFrame(rows).to_csv(source, index=False)
    done = logged.run_job("--input", str(source), "--rejects", str(rejects))
    assert done.returncode == 0, done.stderr[-3000:]
    refused = pd.read_csv(rejects)
    assert list(zip(refused["row"], refused["rule"], strict=True)) == [
        (3, "unknown_id"),
        (4, "observed_before_decision"),
        (5, "unknown_outcome"),
        (6, "duplicate_id"),
        (7, "duplicate_id"),
        (8, "missing_id"),
        (9, "invalid_observed_at"),
    ]
    current = logged.table.current().to_pandas().set_index("request_id")
    assert current.loc[r[0]["request_id"], "outcome"] == "good"
    assert current.loc[r[1]["request_id"], "outcome"] == "bad", "an applicant_id row belongs to its decision"
    assert current.loc[r[1]["request_id"], "label"] == 1
    assert "2 new outcome(s)" in done.stdout and "7 rejected" in done.stdout


def test_loading_the_same_file_twice_adds_nothing(logged: Logged, tmp_path: Path) -> None:
    rows = [
        {"request_id": _row(logged, i)["request_id"], "outcome": "good", "observed_at": _later(_row(logged, i))}
        for i in range(10, 15)
    ]
    source = tmp_path / "again.parquet"
    pd.DataFrame(rows).to_parquet(source)
    first = logged.run_job("--input", str(source))
    files = logged.table.files()
    second = logged.run_job("--input", str(source))
    assert first.returncode == second.returncode == 0, second.stderr[-2000:]
    assert "5 new outcome(s)" in first.stdout
    assert "0 new outcome(s), 0 correction(s), 5 already stored" in second.stdout
    assert logged.table.files() == files, "a load that changes nothing writes no file"


def test_a_corrected_outcome_supersedes_the_first_and_history_keeps_both(logged: Logged, tmp_path: Path) -> None:
    row = _row(logged, 20)
    for outcome, name in (("good", "first.csv"), ("bad", "correction.csv")):
        path = tmp_path / name
        pd.DataFrame([{"request_id": row["request_id"], "outcome": outcome, "observed_at": _later(row)}]).to_csv(
            path, index=False
        )
        assert logged.run_job("--input", str(path)).returncode == 0
    current = logged.table.current()
    mine = current.filter(pc.equal(current["request_id"], row["request_id"])).to_pylist()
    assert [(m["outcome"], m["source"]) for m in mine] == [("bad", "correction.csv")]
    history = logged.table.history()
    kept = history.filter(pc.equal(history["request_id"], row["request_id"])).to_pylist()
    assert sorted((m["outcome"], m["source"]) for m in kept) == [("bad", "correction.csv"), ("good", "first.csv")]


def test_a_file_without_an_outcome_column_fails_naming_it(logged: Logged, tmp_path: Path) -> None:
    path = tmp_path / "no-outcome.csv"
    pd.DataFrame([{"request_id": "x", "observed_at": "2027-01-01"}]).to_csv(path, index=False)
    done = logged.run_job("--input", str(path))
    assert done.returncode == 1
    assert "missing column(s): outcome" in done.stderr


# ------------------------------------------------------------------ POST /v1/outcomes


def test_posting_outcomes_needs_the_admin_token(logged: Logged) -> None:
    body = {"outcomes": [{"request_id": "x", "outcome": "good", "observed_at": "2027-01-01"}]}
    assert logged.client.post("/v1/outcomes", json=body).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert logged.client.post("/v1/outcomes", json=body, headers=wrong).status_code == 403


def test_a_posted_bad_row_gets_422_naming_row_and_rule_and_nothing_is_stored(logged: Logged) -> None:
    good, late = _row(logged, 25), _row(logged, 26)
    body = {
        "outcomes": [
            {"request_id": good["request_id"], "outcome": "good", "observed_at": _later(good)},
            {"request_id": late["request_id"], "outcome": "good", "observed_at": "2001-01-01T00:00:00Z"},
        ]
    }
    response = logged.client.post("/v1/outcomes", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert (problem["row"], problem["type"], problem["field"]) == (1, "observed_before_decision", "request_id")
    current = logged.table.current()
    assert not pc.any(pc.equal(current["request_id"], good["request_id"])).as_py(), "nothing is stored"


def test_a_posted_batch_is_stored_once_whatever_the_retries(logged: Logged) -> None:
    rows = [_row(logged, i) for i in range(30, 34)]
    body = {"outcomes": [{"applicant_id": r["applicant_id"], "outcome": "bad", "observed_at": _later(r)} for r in rows]}
    first = logged.client.post("/v1/outcomes", json=body, headers=ADMIN)
    again = logged.client.post("/v1/outcomes", json=body, headers=ADMIN)
    assert first.status_code == again.status_code == 200, first.text
    assert (first.json()["added"], again.json()["added"], again.json()["unchanged"]) == (4, 0, 4)


def test_a_posted_row_of_the_wrong_type_or_too_many_rows_is_422(logged: Logged) -> None:
    wrong = {"outcomes": [{"request_id": 7, "outcome": "good", "observed_at": "2027-01-01"}]}
    response = logged.client.post("/v1/outcomes", json=wrong, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["detail"][0]["row"] == 0
    limit = logged.trained.store.config.model.outcomes.max_batch_size
    many = {"outcomes": [{"request_id": "x", "outcome": "good", "observed_at": "2027-01-01"}] * (limit + 1)}
    response = logged.client.post("/v1/outcomes", json=many, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "too_long"


def test_get_performance_serves_the_summary_the_job_wrote(logged: Logged) -> None:
    store = logged.trained.store
    assert logged.client.get("/v1/performance").status_code == 404, "no summary before the first run"
    rows = [_row(logged, i) for i in range(35, 40)]
    body = {"outcomes": [{"request_id": r["request_id"], "outcome": "good", "observed_at": _later(r)} for r in rows]}
    assert logged.client.post("/v1/outcomes", json=body, headers=ADMIN).status_code == 200
    # the outcomes are dated 30 days after their decisions: look from after that
    as_of = datetime.now(UTC) + timedelta(days=60)
    summary = performance(store.config, store.settings, maturity_days=0, as_of=as_of, log_dir=logged.log_dir)
    response = logged.client.get("/v1/performance")
    assert response.status_code == 200, response.text
    body = response.json()
    version = str(logged.trained.version.version)
    assert body["versions"][version]["decisions"] == summary.versions[version].decisions == COUNT
    assert body["versions"][version]["with_outcome"] == summary.versions[version].with_outcome >= len(rows)
    assert {"auc", "ks", "brier", "coverage_by_decision"} <= set(body["versions"][version])


def test_outcomes_before_any_decision_is_logged_are_refused_not_a_crash(tmp_path: Path) -> None:
    """An empty log (a new service) answers 'unknown id' for each row; it used to raise (500 on the API)."""
    import pandas as pd

    from credit_risk.config import load_project_config
    from credit_risk.outcomes.ingest import check_rows

    target = load_project_config().features.target
    rows = pd.DataFrame(
        [
            {"request_id": "3f2a9c", "applicant_id": None, "outcome": "good", "observed_at": "2027-01-15"},
            {"request_id": None, "applicant_id": "A-1", "outcome": "bad", "observed_at": "2027-01-15"},
        ],
        dtype=object,
    )
    checked = check_rows(rows, log_dir=tmp_path / "no-log", model_name="credit-risk", target=target)
    assert checked.rejected == 2
    assert set(checked.rejects["rule"]) == {"unknown_id"}, checked.rejects.to_dict("records")


def test_an_applicant_id_row_belongs_to_its_one_decision_before_the_outcome_or_is_refused() -> None:
    """Two decisions of one applicant before the outcome: which one it belongs to is unknown (refused,
    naming both); one decision before it: that one, even when a later decision exists."""
    import pyarrow as pa

    from credit_risk.config import load_project_config
    from credit_risk.outcomes.checks import check_outcomes

    target = load_project_config().features.target
    decided = [datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 1, 2, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)]
    decisions = pa.table(
        {
            "request_id": ["first", "second", "other"],
            "applicant_id": ["A-1", "A-1", "B-2"],
            "scored_at": pa.array(decided, pa.timestamp("us", tz="UTC")),
        }
    )
    later = pd.DataFrame(
        [
            {"applicant_id": "A-1", "outcome": target.event, "observed_at": "2027-06-01"},
            {"applicant_id": "B-2", "outcome": target.event, "observed_at": "2027-06-01"},
        ],
        dtype=object,
    )
    checked = check_outcomes(later, decisions, target)
    refused = checked.rejects.to_dict("records")
    assert [(r["row"], r["rule"]) for r in refused] == [(1, "ambiguous_applicant")], refused
    assert "first, second" in refused[0]["message"] and "request_id" in refused[0]["message"], refused
    assert checked.accepted.column("request_id").to_pylist() == ["other"]
    between = pd.DataFrame([{"applicant_id": "A-1", "outcome": target.non_event, "observed_at": "2027-01-01T12:00Z"}])
    checked = check_outcomes(between.astype(object), decisions, target)
    assert checked.rejected == 0, checked.rejects.to_dict("records")
    assert checked.accepted.column("request_id").to_pylist() == ["first"]
