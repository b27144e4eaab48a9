"""The Spark engine scores like the local engine (real local-mode SparkSession, real registered model)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from credit_risk.data import load_applicants
from credit_risk.schema import DataValidationError
from pipelines.batch_score import BatchOptions, BatchSummary, batch_score, rejects_path
from pipelines.synthetic import generate_applicants
from tests.conftest import TrainedModel
from tests.support.required import require_component, spark_unavailable_reason

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def _spark_present() -> None:
    require_component(spark_unavailable_reason())


ROWS = 10_000


def applicants(trained: TrainedModel, rows: int, seed: int) -> pd.DataFrame:
    config = trained.store.config
    source, _ = load_applicants(config.resolve(config.training.data.path), config.features)
    return generate_applicants(source, config.features, rows=rows, seed=seed).astype(object)


@pytest.fixture(scope="module")
def portfolio(trained: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10k synthetic applicants with an id, as CSV, with three bad rows."""
    frame = applicants(trained, ROWS, seed=11)
    frame.insert(0, "applicant_id", [f"S{i:06d}" for i in range(ROWS)])
    frame.loc[5, "duration_in_month"] = 999
    frame.loc[6, "purpose"] = "yacht"
    frame.loc[7, "credit_amount"] = "12.5"
    path = tmp_path_factory.mktemp("portfolio") / "applicants.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def parquet_folder(trained: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three Parquet files of different sizes (Spark packs them largest first), one in a subfolder, names
    that Spark's file URIs percent-encode ("+", "%", a space, a non-ASCII letter); no id column, one bad row."""
    folder = tmp_path_factory.mktemp("folder")
    (folder / "x y").mkdir()
    files = (("a+1 b.parquet", 700, 1), ("b%20.parquet", 3000, 2), ("x y/c é.parquet", 1500, 3))
    for name, rows, seed in files:
        frame = applicants(trained, rows, seed)
        if name == "b%20.parquet":
            frame.loc[10, "duration_in_month"] = 999
        frame.infer_objects().to_parquet(folder / name, index=False, row_group_size=1000)
    return folder


@pytest.fixture(scope="module")
def local_csv(trained: TrainedModel, portfolio: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The local engine's output for the CSV portfolio, reasons on: what Spark must reproduce."""
    output = tmp_path_factory.mktemp("local") / "local.parquet"
    score(trained, portfolio, output, engine="local")
    return output


def score(
    trained: TrainedModel, source: Path, output: Path, spark: object | None = None, **options: object
) -> BatchSummary:
    store = trained.store
    return batch_score(
        store.config, store.settings, BatchOptions(input=source, output=output, progress=False, **options), spark=spark
    )


def read(path: Path, key: str = "row") -> pd.DataFrame:
    return pq.read_table(path).to_pandas().sort_values(key).reset_index(drop=True)


def assert_same_scores(local: pd.DataFrame, remote: pd.DataFrame, *, reasons: bool) -> None:
    assert remote["row"].tolist() == local["row"].tolist()
    np.testing.assert_array_equal(remote["probability"].to_numpy(), local["probability"].to_numpy())
    assert remote["score"].tolist() == local["score"].tolist()
    assert remote["risk_band"].astype(str).tolist() == local["risk_band"].astype(str).tolist()
    assert remote["decision"].astype(str).tolist() == local["decision"].astype(str).tolist()
    if reasons:
        assert [list(r) for r in remote["reasons"]] == [list(r) for r in local["reasons"]]
        assert any(len(r) for r in local["reasons"])


def test_spark_and_local_engines_give_identical_results_reasons_rejects_and_row_numbers_included(
    trained: TrainedModel, portfolio: Path, local_csv: Path, spark: object, tmp_path: Path
) -> None:
    summary = score(trained, portfolio, tmp_path / "spark.parquet", spark=spark, engine="spark")
    local, remote = read(local_csv), read(tmp_path / "spark.parquet")
    assert len(remote) == ROWS - 3
    assert remote["applicant_id"].tolist() == local["applicant_id"].tolist()
    assert_same_scores(local, remote, reasons=True)
    # the same bad rows, with the same row numbers, fields and rules
    columns = ["row", "id", "field", "rule", "reason"]
    local_bad = pq.read_table(rejects_path(local_csv)).to_pandas()[columns].sort_values("row")
    remote_bad = pq.read_table(rejects_path(tmp_path / "spark.parquet")).to_pandas()[columns].sort_values("row")
    assert remote_bad["id"].tolist() == ["S000005", "S000006", "S000007"]
    pd.testing.assert_frame_equal(remote_bad.reset_index(drop=True), local_bad.reset_index(drop=True))
    # rows_per_second of the whole job (read, validate, score, write) is in the Spark run too
    run = mlflow.get_run(mlflow.last_active_run().info.run_id)
    assert run.data.params["engine"] == "spark" and run.data.params["reasons"] == "true"
    assert run.data.metrics["rows_per_second"] == pytest.approx(summary.rows_per_second)
    assert run.data.metrics["rows_per_second"] > 0


def test_row_numbers_follow_the_files_in_name_order_as_the_local_engine_counts(
    trained: TrainedModel, parquet_folder: Path, spark: object, tmp_path: Path
) -> None:
    score(trained, parquet_folder, tmp_path / "local.parquet", engine="local")
    score(trained, parquet_folder, tmp_path / "spark.parquet", spark=spark, engine="spark")
    local, remote = read(tmp_path / "local.parquet"), read(tmp_path / "spark.parquet")
    assert len(local) == 5199 and "applicant_id" not in remote.columns
    assert_same_scores(local, remote, reasons=True)
    # the tasks read the six row groups themselves, in two tasks of consecutive row groups (local[2]),
    # and wrote the local engine's schema with its metadata
    parts = sorted((tmp_path / "spark.parquet").glob("part-*.parquet"))
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet"]
    assert pq.read_schema(parts[0]).equals(pq.read_schema(tmp_path / "local.parquet"), check_metadata=False)
    metadata = pq.read_schema(parts[0]).metadata
    assert metadata[b"model_version"] == pq.read_schema(tmp_path / "local.parquet").metadata[b"model_version"]
    remote_bad = pq.read_table(rejects_path(tmp_path / "spark.parquet"))["row"].to_pylist()
    assert remote_bad == [700 + 11] == pq.read_table(rejects_path(tmp_path / "local.parquet"))["row"].to_pylist()


def test_recourse_on_the_spark_engine_is_the_local_engines_row_for_row(
    trained: TrainedModel, spark: object, tmp_path: Path
) -> None:
    """``recourse=true`` in Spark's tasks: the same JSON column as the local engine's, searched by the same
    code (credit_risk/recourse/) on a CSV's values as the rule table reads them; bad rows rejected alike."""
    frame = applicants(trained, 240, seed=21)
    frame.insert(0, "applicant_id", [f"R{i:04d}" for i in range(240)])
    frame.loc[3, "duration_in_month"] = 999
    source = tmp_path / "applicants.csv"
    frame.to_csv(source, index=False)
    score(trained, source, tmp_path / "local.parquet", engine="local", recourse=True)
    score(trained, source, tmp_path / "spark.parquet", spark=spark, engine="spark", recourse=True)
    local, remote = read(tmp_path / "local.parquet"), read(tmp_path / "spark.parquet")
    assert len(remote) == 239 and remote["applicant_id"].tolist() == local["applicant_id"].tolist()
    assert_same_scores(local, remote, reasons=True)
    pd.testing.assert_series_equal(remote["recourse"], local["recourse"])
    answers = [json.loads(a) for a in remote["recourse"].dropna()]
    assert answers and any(a["recourse"] for a in answers), "no decline or referral got an alternative"
    assert remote["recourse"].isna().tolist() == (remote["decision"].astype(str) == "approve").tolist()


def test_a_csv_folder_whose_files_order_their_columns_differently_is_refused(
    trained: TrainedModel, portfolio: Path, spark: object, tmp_path: Path
) -> None:
    """Spark would read the second file's columns by the first one's header, by position."""
    folder = tmp_path / "csv"
    folder.mkdir()
    frame = pd.read_csv(portfolio, dtype=str, nrows=20)
    frame.to_csv(folder / "a.csv", index=False)
    frame[list(reversed(frame.columns))].to_csv(folder / "b.csv", index=False)
    with pytest.raises(DataValidationError, match=r"b\.csv: column 1 is .* the same header"):
        score(trained, folder, tmp_path / "spark.parquet", spark=spark, engine="spark")


def test_mlflow_spark_udf_stays_available(
    trained: TrainedModel, portfolio: Path, local_csv: Path, spark: object, tmp_path: Path
) -> None:
    score(
        trained,
        portfolio,
        tmp_path / "udf.parquet",
        spark=spark,
        engine="spark",
        spark_scorer="mlflow",
        allow_model_code=True,  # spark_udf imports the version's pyfunc_model.py: refused unless allowed
    )
    local, remote = read(local_csv), read(tmp_path / "udf.parquet")
    assert "reasons" not in remote.columns
    assert_same_scores(local, remote, reasons=False)


def test_one_row_group_is_read_in_one_task_scoring_on_every_core(
    trained: TrainedModel, spark: object, tmp_path: Path
) -> None:
    """A row group is read in one task: the engine keeps that one task, on both cores' threads, and an
    input without bad rows still gets its (empty) rejects file; the ids of a Parquet input are carried."""
    from pipelines.batch.plan import parquet_tasks
    from pipelines.batch.spark.reading import _spread, task_threads

    source = tmp_path / "one.parquet"
    frame = applicants(trained, 4000, seed=5).infer_objects()
    frame.insert(0, "applicant_id", np.arange(4000, dtype=np.int32) * 7)
    frame.to_parquet(source, index=False)
    assert pq.read_metadata(source).num_row_groups == 1
    tasks = parquet_tasks([source], [pq.read_metadata(source)], parallelism=2)
    assert (len(tasks), task_threads(spark, len(tasks))) == (1, 2)  # type: ignore[arg-type]
    # Spark's own reading (CSV, or spark_udf's route) of one split: the same, without a shuffle
    frame, threads = _spread(spark, spark.read.parquet(str(source)), pieces=1, threaded=True)  # type: ignore[attr-defined]
    assert (frame.rdd.getNumPartitions(), threads) == (1, 2)
    # spark_udf scores on one thread a task: the rows are spread over the cores instead
    frame, threads = _spread(spark, spark.read.parquet(str(source)), pieces=1, threaded=False)  # type: ignore[attr-defined]
    assert (frame.rdd.getNumPartitions(), threads) == (2, 1)

    score(trained, source, tmp_path / "local.parquet", engine="local")
    summary = score(trained, source, tmp_path / "spark.parquet", spark=spark, engine="spark")
    assert (summary.rows_read, summary.rows_scored, summary.rows_rejected) == (4000, 4000, 0)
    local, remote = read(tmp_path / "local.parquet"), read(tmp_path / "spark.parquet")
    assert_same_scores(local, remote, reasons=True)
    assert remote["applicant_id"].tolist() == local["applicant_id"].tolist() == list(range(0, 28000, 7))
    assert pq.read_table(rejects_path(tmp_path / "spark.parquet")).num_rows == 0


def test_a_failed_job_leaves_the_earlier_output_as_it_was_and_no_staging_files(
    trained: TrainedModel, spark: object, tmp_path: Path
) -> None:
    """The tasks write into a staging folder the driver commits only when every task has answered: a
    task that cannot read its row group (its pages damaged) answers with the error, which the job
    raises as bad input naming the file, and the output of the run before is left whole."""
    source = tmp_path / "in" / "applicants.parquet"
    source.parent.mkdir()
    applicants(trained, 3000, seed=7).infer_objects().to_parquet(source, index=False, row_group_size=1000)
    output = tmp_path / "scores"
    score(trained, source, output, spark=spark, engine="spark")
    before = read(output)
    # damage the first data page; the footer (and so the plan) stays readable
    data = bytearray(source.read_bytes())
    data[4:260] = b"\xff" * 256
    source.write_bytes(bytes(data))
    with pytest.raises(DataValidationError, match=r"applicants\.parquet: cannot read this parquet file"):
        score(trained, source, output, spark=spark, engine="spark")
    pd.testing.assert_frame_equal(read(output), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "scores", "scores.rejects.parquet"]


def test_the_spark_engine_refuses_a_folder_that_is_not_an_earlier_output_and_leaves_it_whole(
    trained: TrainedModel, spark: object, tmp_path: Path
) -> None:
    """The commit replaces the output folder whole: a folder of someone else's files is never given to it."""
    source = tmp_path / "applicants.parquet"
    applicants(trained, 200, seed=3).infer_objects().to_parquet(source, index=False)
    output = tmp_path / "reports"
    output.mkdir()
    (output / "q3-report.xlsx").write_bytes(b"someone's work")
    with pytest.raises(DataValidationError, match=r"reports: a folder that is not empty and not an earlier output"):
        score(trained, source, output, spark=spark, engine="spark")
    assert [p.name for p in output.iterdir()] == ["q3-report.xlsx"]
    assert (output / "q3-report.xlsx").read_bytes() == b"someone's work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["applicants.parquet", "reports"], "no staging left"


def test_the_spark_engine_fills_an_empty_folder_and_replaces_its_own_earlier_output(
    trained: TrainedModel, spark: object, tmp_path: Path
) -> None:
    from pipelines.batch.output import MARKER_FILE

    source = tmp_path / "applicants.parquet"
    applicants(trained, 300, seed=4).infer_objects().to_parquet(source, index=False)
    output = tmp_path / "scores"
    output.mkdir()
    score(trained, source, output, spark=spark, engine="spark")
    marker = json.loads((output / MARKER_FILE).read_text())
    assert marker["credit_risk_output"] == "credit-risk batch_score" and marker["kind"] == "scored"
    assert json.loads((rejects_path(output) / MARKER_FILE).read_text())["kind"] == "rejects"
    applicants(trained, 250, seed=5).infer_objects().to_parquet(source, index=False)
    summary = score(trained, source, output, spark=spark, engine="spark")
    assert summary.rows_read == 250 and len(read(output)) == 250


def test_a_local_session_runs_its_driver_jvm_with_the_serial_collector(spark: object) -> None:
    """The JVM option the engine sets in local mode reaches the driver JVM (the one that runs the tasks)."""
    from pipelines.batch.spark import LOCAL_JAVA_OPTIONS

    runtime = spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()  # type: ignore[attr-defined]
    arguments = list(runtime.getInputArguments())
    assert set(LOCAL_JAVA_OPTIONS.split()) <= set(arguments)
    assert spark.conf.get("spark.driver.extraJavaOptions") == LOCAL_JAVA_OPTIONS  # type: ignore[attr-defined]


def test_a_scorecard_scores_in_spark_as_in_the_local_engine(
    scorecard_trained: TrainedModel, spark: object, tmp_path: Path
) -> None:
    source = tmp_path / "applicants.parquet"
    applicants(scorecard_trained, 500, seed=7).infer_objects().to_parquet(source, index=False)
    score(scorecard_trained, source, tmp_path / "local.parquet", engine="local")
    score(scorecard_trained, source, tmp_path / "spark.parquet", spark=spark, engine="spark")
    local, remote = read(tmp_path / "local.parquet"), read(tmp_path / "spark.parquet")
    assert len(local) == 500
    assert_same_scores(local, remote, reasons=True)
