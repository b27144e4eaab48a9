"""The Spark engine scores like the local engine (real local-mode SparkSession, real registered model)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipelines.batch_score import BatchOptions, batch_score, rejects_path, spark_session
from pipelines.data import load_applicants
from pipelines.synthetic import generate_applicants
from tests.conftest import TrainedModel
from tests.support.required import require_component, spark_unavailable_reason

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def _spark_present() -> None:
    require_component(spark_unavailable_reason())


ROWS = 10_000


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    """One SparkSession for the module: the JVM takes seconds to start."""
    session = spark_session("local[2]", {"spark.sql.shuffle.partitions": "2"})
    yield session
    session.stop()


@pytest.fixture(scope="module")
def portfolio(trained: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10k synthetic applicants with an id, as CSV, with three bad rows."""
    config = trained.store.config
    source, _ = load_applicants(config.resolve(config.training.data.path), config.features)
    frame = generate_applicants(source, config.features, rows=ROWS, seed=11).astype(object)
    frame.insert(0, "applicant_id", [f"S{i:06d}" for i in range(ROWS)])
    frame.loc[5, "duration_in_month"] = 999
    frame.loc[6, "purpose"] = "yacht"
    frame.loc[7, "credit_amount"] = "12.5"
    path = tmp_path_factory.mktemp("portfolio") / "applicants.csv"
    frame.to_csv(path, index=False)
    return path


def score(trained: TrainedModel, source: Path, output: Path, spark: object | None = None, **options: object) -> None:
    store = trained.store
    batch_score(
        store.config, store.settings, BatchOptions(input=source, output=output, progress=False, **options), spark=spark
    )


def read(path: Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas().sort_values("applicant_id").reset_index(drop=True)


def test_spark_and_local_engines_give_identical_results(
    trained: TrainedModel, portfolio: Path, spark: object, tmp_path: Path
) -> None:
    score(trained, portfolio, tmp_path / "local.parquet", engine="local", reasons=False)
    score(trained, portfolio, tmp_path / "spark.parquet", spark=spark, engine="spark")
    local, remote = read(tmp_path / "local.parquet"), read(tmp_path / "spark.parquet")
    assert len(remote) == ROWS - 3
    assert remote["applicant_id"].tolist() == local["applicant_id"].tolist()
    np.testing.assert_array_equal(remote["probability"].to_numpy(), local["probability"].to_numpy())
    assert remote["score"].tolist() == local["score"].tolist()
    assert remote["risk_band"].astype(str).tolist() == local["risk_band"].astype(str).tolist()
    assert remote["decision"].astype(str).tolist() == local["decision"].astype(str).tolist()


def test_spark_rejects_the_same_rows_with_the_same_rules(
    trained: TrainedModel, portfolio: Path, spark: object, tmp_path: Path
) -> None:
    score(trained, portfolio, tmp_path / "local.parquet", engine="local", reasons=False)
    score(trained, portfolio, tmp_path / "spark.parquet", spark=spark, engine="spark")
    columns = ["id", "field", "rule", "reason"]
    local = pq.read_table(rejects_path(tmp_path / "local.parquet")).to_pandas()[columns].sort_values("id")
    remote = pq.read_table(rejects_path(tmp_path / "spark.parquet")).to_pandas()[columns].sort_values("id")
    assert remote["id"].tolist() == ["S000005", "S000006", "S000007"]
    pd.testing.assert_frame_equal(remote.reset_index(drop=True), local.reset_index(drop=True))
