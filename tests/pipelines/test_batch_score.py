"""Batch scoring with the local engine, against the session's real registered model."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xgboost as xgb
import yaml

from credit_risk import registry
from credit_risk.config import PROJECT_ROOT, load_project_config
from credit_risk.data import load_applicants
from credit_risk.decision import DecisionEngine
from credit_risk.profile import build_profile
from credit_risk.recourse import RecourseSearch
from credit_risk.schema import DataValidationError, FeatureSchema
from credit_risk.scoring import Encoder, ScoringModel
from credit_risk.trees import FastModel, TreeEnsemble, _applicants, service_runtime
from credit_risk.trees.kernels import top_reasons
from pipelines.batch import DecisionColumns
from pipelines.batch_score import BatchOptions, BatchSummary, batch_score, main, rejects_path
from pipelines.candidates import Candidate, fit_model
from pipelines.synthetic import generate_applicants
from tests.conftest import TrainedModel

pytestmark = pytest.mark.code

ROWS = 10_000


@pytest.fixture(scope="module")
def applicants(trained: TrainedModel) -> pd.DataFrame:
    """10k synthetic applicants (schema codes) with an id column."""
    config = trained.store.config
    source, _ = load_applicants(config.resolve(config.training.data.path), config.features)
    frame = generate_applicants(source, config.features, rows=ROWS, seed=7)
    frame.insert(0, "applicant_id", [f"A{i:06d}" for i in range(ROWS)])
    return frame


@pytest.fixture(scope="module")
def scoring_model(trained: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> ScoringModel:
    store = trained.store
    local = registry.download_version(
        store.client, trained.version.name, trained.version.version, tmp_path_factory.mktemp("model")
    )
    return ScoringModel.load(registry.scoring_dir(local))


def run(trained: TrainedModel, source: Path, output: Path, **options: object) -> BatchSummary:
    store = trained.store
    return batch_score(
        store.config, store.settings, BatchOptions(input=source, output=output, progress=False, **options)
    )


def test_local_engine_matches_the_decision_engine_row_for_row(
    trained: TrainedModel, applicants: pd.DataFrame, scoring_model: ScoringModel, tmp_path: Path
) -> None:
    source = tmp_path / "applicants.parquet"
    applicants.to_parquet(source, index=False)
    summary = run(trained, source, tmp_path / "scores.parquet", chunk_rows=3000)
    out = pq.read_table(summary.output).to_pandas()
    records = applicants[scoring_model.schema.input_names].to_dict("records")
    expected = DecisionEngine(scoring_model, trained.store.config.model).assess(records)
    assert summary.rows_scored == ROWS and summary.rows_rejected == 0
    assert out["applicant_id"].tolist() == applicants["applicant_id"].tolist()
    np.testing.assert_array_equal(out["probability"].to_numpy(), [a.probability for a in expected])
    assert out["score"].tolist() == [a.score for a in expected]
    assert out["risk_band"].astype(str).tolist() == [a.band for a in expected]
    assert out["decision"].astype(str).tolist() == [a.decision for a in expected]
    # reasons: exactly the service's, which scores one applicant per request with the verified numpy runtime
    service = DecisionEngine(FastModel(scoring_model, TreeEnsemble.verified(scoring_model)), trained.store.config.model)
    served = [service.assess([record])[0] for record in records]
    assert [list(r) for r in out["reasons"]] == [[reason.code for reason in a.reasons] for a in served]
    # every run logs its throughput (read, validate, score, write)
    run_data = mlflow.get_run(mlflow.last_active_run().info.run_id).data
    assert run_data.metrics["rows_per_second"] == pytest.approx(summary.rows_per_second) and summary.rows_per_second > 0


def test_output_records_the_model_version_and_policy(
    trained: TrainedModel, applicants: pd.DataFrame, tmp_path: Path
) -> None:
    source = tmp_path / "applicants.parquet"
    applicants.head(100).to_parquet(source, index=False)
    summary = run(trained, source, tmp_path / "scores.parquet")
    meta = pq.read_schema(summary.output).metadata
    assert meta[b"model_version"].decode() == str(trained.version.version)
    assert meta[b"decision_policy_version"].decode() == trained.store.config.model.decision.policy_version


def test_csv_folder_scores_like_one_parquet_file(
    trained: TrainedModel, applicants: pd.DataFrame, tmp_path: Path
) -> None:
    folder = tmp_path / "portfolio"
    folder.mkdir()
    part = applicants.head(3000)
    part.iloc[:1000].to_csv(folder / "part-0.csv", index=False)
    part.iloc[1000:].to_csv(folder / "part-1.csv", index=False)
    part.to_parquet(tmp_path / "all.parquet", index=False)
    from_csv = pq.read_table(run(trained, folder, tmp_path / "csv.parquet", chunk_rows=700).output).to_pandas()
    from_parquet = pq.read_table(run(trained, tmp_path / "all.parquet", tmp_path / "pq.parquet").output).to_pandas()
    assert from_csv["row"].tolist() == list(range(1, 3001)), "row numbers run across the folder's files"
    pd.testing.assert_frame_equal(from_csv, from_parquet, check_categorical=False)


def test_bad_rows_go_to_the_rejects_file_with_field_and_rule(
    trained: TrainedModel, applicants: pd.DataFrame, tmp_path: Path
) -> None:
    frame = applicants.head(50).astype(object)
    frame.loc[3, "duration_in_month"] = 500  # out of range
    frame.loc[7, "purpose"] = "yacht"  # unknown category
    frame.loc[11, "credit_amount"] = "lots"  # not a number
    frame.loc[12, "credit_amount"] = "12.5"  # not whole
    frame.loc[20, "housing"] = None  # missing
    frame.loc[20, "duration_in_month"] = 0  # two problems in one row
    source = tmp_path / "applicants.csv"
    frame.to_csv(source, index=False)
    summary = run(trained, source, tmp_path / "scores.parquet")
    rejects = pq.read_table(rejects_path(summary.output)).to_pandas().set_index("row")
    assert summary.rows_rejected == 5 and summary.rows_scored == 45
    assert sorted(rejects.index) == [4, 8, 12, 13, 21], "row numbers are 1-based data rows"
    assert rejects.loc[4, "field"] == "duration_in_month" and rejects.loc[4, "rule"] == "must be in [1, 120]"
    assert rejects.loc[8, "field"] == "purpose" and rejects.loc[8, "rule"].startswith("must be one of")
    assert rejects.loc[12, "rule"] == "must be an integer"
    assert rejects.loc[13, "rule"] == "must be a whole number"
    assert rejects.loc[21, "reason"] == "duration_in_month: must be in [1, 120]; housing: is required"
    assert rejects.loc[21, "id"] == frame.loc[20, "applicant_id"]
    scored = pq.read_table(summary.output).to_pandas()
    assert not set(scored["row"]) & set(rejects.index), "a rejected row is not scored"


def test_reasons_can_be_switched_off(trained: TrainedModel, applicants: pd.DataFrame, tmp_path: Path) -> None:
    source = tmp_path / "applicants.parquet"
    applicants.head(500).to_parquet(source, index=False)
    with_reasons = pq.read_table(run(trained, source, tmp_path / "a.parquet").output)
    without = pq.read_table(run(trained, source, tmp_path / "b.parquet", reasons=False).output)
    assert "reasons" not in without.column_names
    assert without.column("score").to_pylist() == with_reasons.column("score").to_pylist()


def _assert_recourse_as_the_service_answers(
    trained: TrainedModel, scoring_model: ScoringModel, records: list[dict], output: Path
) -> None:
    """Row for row: the ``recourse`` column is the service's search on the same applicant (null: approved)."""
    scored = pq.read_table(output).to_pandas()
    config = trained.store.config.model
    scorer, _ = service_runtime(scoring_model, config.serving.tree_runtime)
    search = RecourseSearch(DecisionEngine(scorer, config), config.recourse)  # as serving/state.py builds it
    assert (scored["decision"] != "approve").any(), "no decline or referral to compare"
    assert len(scored) == len(records)
    for record, decision, answer in zip(records, scored["decision"], scored["recourse"], strict=True):
        if decision == "approve":
            assert pd.isna(answer)
        else:
            assert json.loads(answer) == search.search(record, decision=decision).to_json(), record


def test_recourse_in_the_local_engine_is_what_the_service_answers(
    trained: TrainedModel, applicants: pd.DataFrame, scoring_model: ScoringModel, tmp_path: Path
) -> None:
    source = tmp_path / "in.parquet"
    applicants.head(300).to_parquet(source)
    run(trained, source, tmp_path / "out.parquet", recourse=True)
    records = applicants.head(300)[scoring_model.schema.input_names].to_dict("records")
    _assert_recourse_as_the_service_answers(trained, scoring_model, records, tmp_path / "out.parquet")


def test_recourse_from_a_csv_input_takes_the_values_as_the_service_reads_them(
    trained: TrainedModel, applicants: pd.DataFrame, scoring_model: ScoringModel, tmp_path: Path
) -> None:
    """A CSV is read as text: the search gets 60, not "60" (an answer says "from": 60, as the service's);
    a rejected row leaves the others' answers in their places."""
    source = tmp_path / "in.csv"
    frame = applicants.head(200).copy()
    frame.loc[5, "duration_in_month"] = 999
    frame.to_csv(source, index=False)
    run(trained, source, tmp_path / "out.parquet", recourse=True)
    records = frame.drop(index=5)[scoring_model.schema.input_names].to_dict("records")
    _assert_recourse_as_the_service_answers(trained, scoring_model, records, tmp_path / "out.parquet")


def test_recourse_with_mlflows_spark_udf_is_refused_naming_the_project_scorer(
    trained: TrainedModel, applicants: pd.DataFrame, tmp_path: Path
) -> None:
    source = tmp_path / "in.parquet"
    applicants.head(10).to_parquet(source)
    options = {"engine": "spark", "spark_scorer": "mlflow", "allow_model_code": True, "recourse": True}
    with pytest.raises(DataValidationError, match="spark_scorer=project"):
        run(trained, source, tmp_path / "out", **options)


def test_a_version_number_selects_that_version(trained: TrainedModel, applicants: pd.DataFrame, tmp_path: Path) -> None:
    source = tmp_path / "applicants.parquet"
    applicants.head(10).to_parquet(source, index=False)
    summary = run(trained, source, tmp_path / "scores.parquet", model=str(trained.version.version))
    assert summary.model_version == str(trained.version.version)


def test_an_unknown_version_is_refused(trained: TrainedModel, applicants: pd.DataFrame, tmp_path: Path) -> None:
    source = tmp_path / "applicants.parquet"
    applicants.head(10).to_parquet(source, index=False)
    with pytest.raises(registry.RegistryError, match=r"version 999 .* does not exist"):
        run(trained, source, tmp_path / "scores.parquet", model="999")


def test_a_tampered_artifact_is_refused(trained: TrainedModel, applicants: pd.DataFrame, tmp_path: Path) -> None:
    store, version = trained.store, trained.version
    source = tmp_path / "applicants.parquet"
    applicants.head(10).to_parquet(source, index=False)
    name, number = version.name, str(version.version)
    good = store.client.get_model_version(name, number).tags[registry.ARTIFACT_DIGEST_TAG]
    store.client.set_model_version_tag(name, number, registry.ARTIFACT_DIGEST_TAG, "0" * 64)
    try:
        with pytest.raises(registry.RegistryError, match="artifact hash mismatch"):
            run(trained, source, tmp_path / "scores.parquet")
    finally:
        store.client.set_model_version_tag(name, number, registry.ARTIFACT_DIGEST_TAG, good)
    assert not (tmp_path / "scores.parquet").exists(), "nothing is scored with an unverified model"


def test_a_missing_model_column_fails_naming_it(
    trained: TrainedModel, applicants: pd.DataFrame, tmp_path: Path
) -> None:
    source = tmp_path / "applicants.parquet"
    applicants.drop(columns=["purpose"]).head(10).to_parquet(source, index=False)
    with pytest.raises(DataValidationError, match=r"missing column.*purpose"):
        run(trained, source, tmp_path / "scores.parquet")


def test_an_output_that_would_replace_the_input_is_refused(
    trained: TrainedModel, applicants: pd.DataFrame, tmp_path: Path
) -> None:
    """The output file, or its rejects file, at the input's path, or a folder holding the input (which a
    Spark run would replace, deleting the input): refused before anything is written."""
    folder = tmp_path / "portfolio"
    folder.mkdir()
    source = folder / "scores.rejects.parquet"
    applicants.head(10).to_parquet(source, index=False)
    before = source.read_bytes()
    for output in (source, folder, folder / "scores.parquet"):
        with pytest.raises(DataValidationError, match=r"the output would replace the input file .*scores\.rejects"):
            run(trained, folder, output)
    assert source.read_bytes() == before and sorted(p.name for p in folder.iterdir()) == [source.name]


def test_the_local_engine_refuses_to_overwrite_a_file_it_did_not_write(
    trained: TrainedModel, applicants: pd.DataFrame, tmp_path: Path
) -> None:
    source = tmp_path / "applicants.parquet"
    applicants.head(10).to_parquet(source, index=False)
    other = tmp_path / "portfolio-2025.parquet"  # someone's file, at the path given as --output
    applicants.head(5).to_parquet(other, index=False)
    before = other.read_bytes()
    with pytest.raises(DataValidationError, match=r"portfolio-2025\.parquet: a file that is not an earlier output"):
        run(trained, source, other)
    assert other.read_bytes() == before and not rejects_path(other).exists()


def test_the_local_engine_replaces_its_own_earlier_output_recognised_by_its_marker(
    trained: TrainedModel, applicants: pd.DataFrame, tmp_path: Path
) -> None:
    from pipelines.batch.output import MARKER_KEY

    source = tmp_path / "applicants.parquet"
    applicants.head(10).to_parquet(source, index=False)
    run(trained, source, tmp_path / "scores.parquet")
    applicants.head(12).to_parquet(source, index=False)
    run(trained, source, tmp_path / "scores.parquet")
    assert pq.read_metadata(tmp_path / "scores.parquet").num_rows == 12
    for path in (tmp_path / "scores.parquet", rejects_path(tmp_path / "scores.parquet")):
        assert pq.read_schema(path).metadata[MARKER_KEY.encode()] == b"credit-risk batch_score", path


def test_the_mlflow_spark_scorer_is_refused_unless_model_code_is_allowed(
    trained: TrainedModel,
    applicants: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """spark_udf imports the version's own pyfunc_model.py on the executors: refused before anything runs."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.store.uri)
    monkeypatch.setenv("CREDIT_RISK_CONFIG_DIR", str(trained.store.config.config_dir))
    source = tmp_path / "applicants.parquet"
    applicants.head(10).to_parquet(source, index=False)
    args = ["--input", str(source), "--output", str(tmp_path / "out"), "--engine", "spark", "--spark-scorer", "mlflow"]
    assert main(args) == 1
    error = capsys.readouterr().err
    assert "pyfunc_model.py" in error and "allow_model_code=true" in error, error
    assert not (tmp_path / "out").exists()


def test_a_later_files_ids_are_written_in_the_first_files_type_or_the_file_is_named(
    trained: TrainedModel, applicants: pd.DataFrame, tmp_path: Path
) -> None:
    folder = tmp_path / "portfolio"
    folder.mkdir()
    first, second = applicants.head(10), applicants.iloc[10:20]
    first.assign(applicant_id=np.arange(10, dtype=np.int32)).to_parquet(folder / "a.parquet", index=False)
    second.assign(applicant_id=np.arange(10, 20, dtype=np.int64)).to_parquet(folder / "b.parquet", index=False)
    run(trained, folder, tmp_path / "scores.parquet")
    scores = pq.read_table(tmp_path / "scores.parquet")
    assert scores.schema.field("applicant_id").type == pa.int32()
    assert sorted(scores.column("applicant_id").to_pylist()) == list(range(20))
    second.to_parquet(folder / "b.parquet", index=False)  # ids "A000010"...: not int32
    with pytest.raises(DataValidationError, match=r"b\.parquet: id column 'applicant_id' cannot be written as int32"):
        run(trained, folder, tmp_path / "scores.parquet")


def test_cli_reports_a_missing_input_in_one_line(
    trained: TrainedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.store.uri)
    monkeypatch.setenv("CREDIT_RISK_CONFIG_DIR", str(trained.store.config.config_dir))
    code = main(["--input", str(tmp_path / "nowhere.csv"), "--output", str(tmp_path / "out.parquet")])
    assert code == 1
    assert "input not found" in capsys.readouterr().err


def test_cli_writes_scores_and_progress(
    trained: TrainedModel,
    applicants: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.store.uri)
    monkeypatch.setenv("CREDIT_RISK_CONFIG_DIR", str(trained.store.config.config_dir))
    source = tmp_path / "applicants.parquet"
    applicants.head(200).to_parquet(source, index=False)
    code = main(["--input", str(source), "--output", str(tmp_path / "out.parquet"), "--reasons", "false"])
    assert code == 0, capsys.readouterr().err
    assert "scored 200 rows, rejected 0" in capsys.readouterr().err
    assert pq.read_metadata(tmp_path / "out.parquet").num_rows == 200


# ------------------------------------------------------------------ reasons identical to the service's


@pytest.fixture(scope="module")
def home_equity() -> tuple[ScoringModel, pd.DataFrame]:
    """An XGBoost model on the second example's file (optional fields, values missing), and its applicants."""
    example = PROJECT_ROOT / "examples" / "home_equity"
    schema = FeatureSchema.model_validate(yaml.safe_load((example / "config" / "features.yaml").read_text()))
    frame, label = load_applicants(example / "home_equity.csv", schema)
    matrix = Encoder(schema).encode_frame(frame)
    params = {"max_depth": 3, "learning_rate": 0.1, "n_estimators": 120, "subsample": 0.9, "colsample_bytree": 0.9}
    model = fit_model(Candidate("xgboost", params), matrix, label.to_numpy(), schema=schema, seed=0)
    model.profile = build_profile(schema, frame, model.predict_proba(matrix))
    return model, frame


def test_batch_reasons_are_the_services_on_random_applicants_with_missing_values(
    home_equity: tuple[ScoringModel, pd.DataFrame],
) -> None:
    """Random applicants (each range's edges, values on the profile's bin edges, a quarter of optional
    values missing) plus the file's own rows: the batch's contributions, computed for 3,000 rows at once
    (the parallel kernel), are bit for bit the service's for each applicant alone, and so are the reasons."""
    model, frame = home_equity
    config = load_project_config(None).model
    records = _applicants(model, 2000, seed=3) + frame[model.schema.input_names].head(1000).to_dict("records")
    records = [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in records]
    matrix = model.encoder.encode_records(records)
    assert np.isnan(matrix).any(axis=1).mean() > 0.3, "many rows take the missing-value branches"
    service = DecisionEngine(FastModel(model, TreeEnsemble.verified(model)), config)
    columns = DecisionColumns(model, config)
    batch = columns.engine.explain(matrix)
    alone = np.concatenate([service.model.field_contributions(matrix[i : i + 1]) for i in range(len(matrix))])
    np.testing.assert_array_equal(batch, alone)
    exact = model.booster.predict(xgb.DMatrix(matrix), pred_contribs=True)[:, :-1] @ model.encoder.column_to_field
    np.testing.assert_allclose(batch, exact, rtol=0, atol=1e-5)  # and they are XGBoost's TreeSHAP
    served = [[r.code for r in service.assess([record])[0].reasons] for record in records]
    assert columns.decide(matrix)["reasons"].to_pylist() == served


def test_reason_ranking_breaks_ties_as_the_service_does(home_equity: tuple[ScoringModel, pd.DataFrame]) -> None:
    """Equal contributions (the lower field first), zeros and negatives (never reasons), fewer positive
    fields than reasons: the one ranking (top_reasons, which the engine uses for every path) is a stable
    descending sort keeping only positive contributions."""
    model, _ = home_equity
    config = load_project_config(None).model
    fields = len(model.encoder.fields)
    rng = np.random.default_rng(5)
    contributions = rng.choice([-0.5, -0.0, 0.0, 0.1, 0.25, 0.25, 0.7], size=(5000, fields))
    contributions[0] = 0.25  # every field tied
    contributions[1] = -1.0  # no reason at all
    contributions[2, :] = 0.0
    contributions[2, fields - 1] = 1e-300  # one tiny positive field, the last one
    codes = [field.reason_code for field in model.encoder.fields]
    k = config.decision.max_reasons

    def reference(row: np.ndarray) -> list[str]:  # a stable descending sort, then only positive contributions
        return [codes[i] for i in np.argsort(-row, kind="stable")[:k] if row[i] > 0]

    expected = [reference(row) for row in contributions]
    got = DecisionColumns(model, config, reasons=False).reason_lists(top_reasons(contributions, k)).to_pylist()
    assert got == expected
    assert len(expected[0]) == config.decision.max_reasons and expected[1] == [] and len(expected[2]) == 1
