"""A second lender's data by configuration alone: ``examples/home_equity/config``.

Decimal fields, optional fields with missing values (blank and ``NA`` in the
file, absent or null in the API), upper-case column names and a protected
numeric field with its own groups. With ``CREDIT_RISK_CONFIG_DIR`` pointing at
that folder and no code change: train (the fast candidates), promote, serve,
score a batch with both engines, monitor.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from fastapi.testclient import TestClient

from credit_risk import registry
from credit_risk.config import PROJECT_ROOT, Settings, load_project_config
from credit_risk.data import load_applicants
from pipelines.batch_score import BatchOptions, batch_score, rejects_path
from pipelines.monitor import monitor
from pipelines.promote import promote
from pipelines.synthetic import generate_applicants
from pipelines.train import train
from tests.conftest import FAST_TRAINING, Store
from tests.serving.conftest import app_client

pytestmark = pytest.mark.integration

EXAMPLE = PROJECT_ROOT / "examples" / "home_equity" / "config"
ROWS = 3000


@dataclass
class Lender:
    store: Store
    log_dir: Path
    portfolio: Path


@pytest.fixture(scope="module")
def lender(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lender]:
    """The example trained, registered and promoted through the settings' config folder."""
    tmp = tmp_path_factory.mktemp("home-equity")
    config_dir = tmp / "config"
    shutil.copytree(EXAMPLE, config_dir)
    training = yaml.safe_load((config_dir / "training.yaml").read_text())
    (config_dir / "training.yaml").write_text(yaml.safe_dump({**training, **FAST_TRAINING}, sort_keys=False))
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    settings = Settings(MLFLOW_TRACKING_URI=uri, CREDIT_RISK_CONFIG_DIR=config_dir)
    config = load_project_config(settings.config_dir, root=PROJECT_ROOT)  # as every entry point reads it
    store = Store(uri=uri, settings=settings, config=config, client=registry.connect(settings, PROJECT_ROOT))
    train(config, settings)
    promote(config, settings, reason="second lender")
    source, _ = load_applicants(config.resolve(config.training.data.path), config.features)
    frame = generate_applicants(source, config.features, rows=ROWS, seed=3).astype(object)
    frame.insert(0, "applicant_id", [f"H{i:05d}" for i in range(ROWS)])
    frame.loc[5, "debt_to_income"] = "a lot"
    frame.loc[6, "job"] = "astronaut"
    frame.loc[7, "loan_amount"] = None  # required
    frame.loc[8, "derogatory_reports"] = "1.5"
    frame.loc[9, "years_on_job"] = "NA"  # the schema's missing marker: valid, not provided
    portfolio = tmp / "portfolio.csv"
    frame.to_csv(portfolio, index=False)
    yield Lender(store=store, log_dir=tmp / "log", portfolio=portfolio)


@pytest.fixture(scope="module")
def client(lender: Lender) -> Iterator[TestClient]:
    registry.connect(lender.store.settings, PROJECT_ROOT)
    with app_client(lender.store, lender.log_dir, max_batch_size=50) as test_client:
        yield test_client


def applicant(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "loan_amount": 12000,
        "mortgage_due": 65000.5,
        "property_value": 91000.25,
        "loan_reason": "debt_consolidation",
        "job": "office",
        "years_on_job": 4.5,
        "derogatory_reports": 0,
        "delinquent_lines": 0,
        "oldest_line_months": 150.75,
        "recent_inquiries": 1,
        "credit_lines": 18,
        "debt_to_income": 31.2,
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not ...}


def test_the_example_trains_on_its_own_columns_with_decimals_and_gaps(lender: Lender) -> None:
    version = registry.version_for_alias(lender.store.client, "home-equity", "production")
    assert version is not None
    assert float(version.tags["metric.roc_auc_cv_mean"]) > 0.7, "the synthetic file carries signal"


def test_the_published_schema_carries_types_requirements_and_ranges(client: TestClient) -> None:
    fields = {f["name"]: f for f in client.get("/v1/model").json()["feature_schema"]["fields"]}
    assert (fields["debt_to_income"]["type"], fields["debt_to_income"]["required"]) == ("number", False)
    assert (fields["debt_to_income"]["min"], fields["debt_to_income"]["max"]) == (0.0, 300.0)
    assert (fields["loan_amount"]["type"], fields["loan_amount"]["required"]) == ("integer", True)
    assert [c["code"] for c in fields["job"]["categories"]][:2] == ["manager", "office"]
    assert fields["applicant_age"]["group_edges"] == [25.0, 62.0]


def test_decimals_absent_and_null_fields_are_scored(client: TestClient) -> None:
    full = client.post("/v1/predict", json=applicant())
    gaps = client.post("/v1/predict", json=applicant(debt_to_income=..., job=None, mortgage_due=None))
    assert full.status_code == 200 and gaps.status_code == 200, gaps.text
    assert full.json()["probability_of_default"] != gaps.json()["probability_of_default"]


def test_a_missing_value_that_raised_the_risk_is_a_reason_worded_not_provided(client: TestClient) -> None:
    body = client.post("/v1/predict", json=applicant(debt_to_income=None)).json()
    reasons = {r["field"]: r for r in body["reasons"]}
    assert "debt_to_income" in reasons, f"an unstated debt-to-income raises the risk here: {body['reasons']}"
    assert (reasons["debt_to_income"]["value"], reasons["debt_to_income"]["value_label"]) == (None, "not provided")


@pytest.mark.parametrize(
    ("field", "value", "rule", "message"),
    [
        ("loan_amount", None, "missing", "is required"),
        ("loan_amount", 1200.5, "int_type", "must be a whole number"),
        ("debt_to_income", "31.2", "float_type", "must be a number"),
        ("debt_to_income", 301.0, "less_than_equal", "must be in [0, 300]"),
        ("job", "astronaut", "literal_error", "must be one of"),
    ],
)
def test_a_bad_value_is_a_422_naming_field_and_rule(
    client: TestClient, field: str, value: Any, rule: str, message: str
) -> None:
    response = client.post("/v1/predict", json=applicant(**{field: value}))
    assert response.status_code == 422, response.text
    [entry] = response.json()["detail"]
    assert (entry["field"], entry["type"]) == (field, rule)
    assert entry["msg"].startswith(message)


def test_batch_rows_with_gaps_are_scored_and_a_bad_row_is_named(client: TestClient) -> None:
    rows = [applicant(), applicant(debt_to_income=None), applicant(years_on_job=-1)]
    response = client.post("/v1/predict/batch", json={"applicants": rows})
    assert response.status_code == 422
    [entry] = response.json()["detail"]
    assert (entry["row"], entry["field"], entry["msg"]) == (2, "years_on_job", "must be in [0, 70]")
    assert client.post("/v1/predict/batch", json={"applicants": rows[:2]}).status_code == 200


def test_local_and_spark_engines_agree_on_a_portfolio_with_gaps(lender: Lender, spark: object, tmp_path: Path) -> None:
    store = lender.store
    registry.connect(store.settings, PROJECT_ROOT)
    local_out, spark_out = tmp_path / "local.parquet", tmp_path / "spark.parquet"
    common = {"input": lender.portfolio, "progress": False}
    batch_score(store.config, store.settings, BatchOptions(output=local_out, engine="local", **common))
    batch_score(store.config, store.settings, BatchOptions(output=spark_out, engine="spark", **common), spark=spark)
    local = pq.read_table(local_out).to_pandas().sort_values("applicant_id").reset_index(drop=True)
    remote = pq.read_table(spark_out).to_pandas().sort_values("applicant_id").reset_index(drop=True)
    assert len(local) == ROWS - 4 and remote["applicant_id"].tolist() == local["applicant_id"].tolist()
    np.testing.assert_allclose(remote["probability"].to_numpy(), local["probability"].to_numpy(), rtol=0, atol=1e-12)
    assert "H00009" in set(local["applicant_id"]), "the NA marker is a missing value, not a bad one"
    columns = ["id", "field", "rule"]
    rejects = {}
    for name, out in (("local", local_out), ("spark", spark_out)):
        table = pq.read_table(rejects_path(out)).to_pandas()[columns].sort_values("id").reset_index(drop=True)
        rejects[name] = table
    pd.testing.assert_frame_equal(rejects["local"], rejects["spark"])
    assert rejects["local"].values.tolist() == [
        ["H00005", "debt_to_income", "must be a number"],
        ["H00006", "job", "must be one of " + str(list(store.config.features.by_name["job"].codes))],
        ["H00007", "loan_amount", "is required"],
        ["H00008", "derogatory_reports", "must be a whole number"],
    ]


def test_the_monitor_reports_missing_rates_and_a_missing_bin(client: TestClient, lender: Lender) -> None:
    store = lender.store
    source, _ = load_applicants(store.config.resolve(store.config.training.data.path), store.config.features)
    frame = generate_applicants(source, store.config.features, rows=400, seed=5)
    records = [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in frame.to_dict("records")]
    for start in range(0, len(records), 50):
        response = client.post("/v1/predict/batch", json={"applicants": records[start : start + 50]})
        assert response.status_code == 200, response.text
    time.sleep(2.5)  # the log writer closes a file every flush_interval_seconds (1 s)
    logged = _read_log(lender.log_dir)
    assert logged.schema.field("debt_to_income").type == pa.float64()
    assert logged.column("debt_to_income").null_count > 0, "a value not provided is logged as null"
    today = datetime.now(UTC).date()
    summary = monitor(store.config, store.settings, start=today, end=today, log_dir=lender.log_dir)
    features = summary["psi"]["features"]
    dti = features["debt_to_income"]
    assert dti["status"] == "scored" and 0.05 < dti["missing_rate"] < 0.5, dti
    assert len(dti["expected"]) == len(dti["actual"]) == len(store_edges(lender, "debt_to_income")) + 2
    assert features["loan_amount"]["missing_rate"] == 0.0
    assert summary["fairness"]["applicant_age"]["groups"], "ages are cut into the configured groups"


def store_edges(lender: Lender, name: str) -> list[float]:
    """The training profile's bin edges of a field, from the registered version."""
    model_dir = registry.download_version(lender.store.client, "home-equity", "1", lender.log_dir.parent / "dl")
    profile = json.loads((registry.scoring_dir(model_dir) / "reference_profile.json").read_text())
    return profile["features"][name]["edges"]


def _read_log(log_dir: Path) -> pa.Table:
    """Every logged row (all files, all dates)."""
    return pa.concat_tables(pq.read_table(path) for path in sorted(log_dir.rglob("*.parquet")))
