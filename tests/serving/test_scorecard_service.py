"""A registered points scorecard, served: the one decision path scores it as the local batch engine does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from credit_risk import registry
from credit_risk.data import load_applicants
from pipelines.batch_score import BatchOptions, batch_score
from tests.conftest import TrainedModel
from tests.serving.conftest import app_client

ROWS = 120


@pytest.fixture(scope="module")
def records(scorecard_trained: TrainedModel) -> list[dict[str, Any]]:
    """Real applicants from the committed data, as the API takes them (codes and Python ints)."""
    config = scorecard_trained.store.config
    frame, _ = load_applicants(config.resolve(config.training.data.path), config.features)
    return [
        {key: (int(value) if isinstance(value, np.integer) else value) for key, value in row.items()}
        for row in frame.head(ROWS).to_dict(orient="records")
    ]


@pytest.fixture(scope="module")
def client(scorecard_trained: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with app_client(scorecard_trained.store, tmp_path_factory.mktemp("log"), max_batch_size=ROWS) as test_client:
        yield test_client


def test_the_service_scores_a_scorecard_by_table_lookup(client: TestClient, scorecard_trained: TrainedModel) -> None:
    model = client.get("/v1/model").json()
    assert model["version"] == str(scorecard_trained.version.version)
    assert model["runtime"] == "scorecard"


def test_the_service_and_the_local_batch_engine_give_the_same_decisions_and_reasons(
    client: TestClient, scorecard_trained: TrainedModel, records: list[dict[str, Any]], tmp_path: Path
) -> None:
    store = scorecard_trained.store
    response = client.post("/v1/predict/batch", json={"applicants": records})
    assert response.status_code == 200, response.text
    served = response.json()["results"]
    single = [client.post("/v1/predict", json=record).json() for record in records[:10]]
    source = tmp_path / "applicants.csv"
    pd.DataFrame(records).to_csv(source, index=False)
    output = tmp_path / "scored.parquet"
    batch_score(store.config, store.settings, BatchOptions(input=source, output=output, progress=False))
    batch = pq.read_table(output).to_pandas().sort_values("row").reset_index(drop=True)
    assert len(batch) == ROWS
    np.testing.assert_array_equal(batch["probability"].to_numpy(), [r["probability_of_default"] for r in served])
    assert batch["score"].tolist() == [r["score"] for r in served]
    assert batch["decision"].astype(str).tolist() == [r["decision"] for r in served]
    assert [list(codes) for codes in batch["reasons"]] == [[x["code"] for x in r["reasons"]] for r in served]
    assert any(r["reasons"] for r in served)
    for alone, in_batch in zip(single, served, strict=False):
        assert alone["probability_of_default"] == in_batch["probability_of_default"]
        assert alone["reasons"] == in_batch["reasons"]


def test_the_registered_scorecard_carries_its_points_table_and_sql_export(scorecard_trained: TrainedModel) -> None:
    store = scorecard_trained.store
    version = registry.get_version(store.client, scorecard_trained.version.name, scorecard_trained.version.version)
    assert version is not None
    paths = registry.list_artifact_paths(store.client, version.run_id, "reports")
    assert {"reports/scorecard_points.csv", "reports/scorecard.sql"} <= set(paths), paths
    assert version.tags["model_kind"] == "scorecard"
