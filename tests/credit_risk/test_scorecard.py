"""The points scorecard: points add up to the score, the score stands for the probability, WoE keeps the
schema's directions, the SQL export scores as Python does, and the plain-data format round-trips."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from credit_risk.config import DEFAULT_CONFIG_DIR, PROJECT_ROOT, ProjectConfig, load_project_config
from credit_risk.data import load_applicants
from credit_risk.decision import DecisionEngine
from credit_risk.recourse import RecourseSearch
from credit_risk.scorecard import POINTS_TABLE_HEADER, SCORECARD_FILE
from credit_risk.scoring import Encoder, ScoringModel
from pipelines.candidates import Candidate, fit_model, respects_monotone
from pipelines.synthetic import generate_applicants

pytestmark = pytest.mark.model

SQL_ROWS = 10_000


@pytest.fixture(scope="module")
def config() -> ProjectConfig:
    return load_project_config(DEFAULT_CONFIG_DIR, root=PROJECT_ROOT)


@pytest.fixture(scope="module")
def applicants(config: ProjectConfig) -> tuple[pd.DataFrame, np.ndarray]:
    features, label = load_applicants(config.resolve(config.training.data.path), config.features)
    return features, label.to_numpy()


@pytest.fixture(scope="module")
def model(config: ProjectConfig, applicants: tuple[pd.DataFrame, np.ndarray]) -> ScoringModel:
    """A scorecard fitted on German Credit (the default grid's first scorecard), under the default scaling."""
    frame, y = applicants
    encoded = Encoder(config.features).encode_frame(frame)
    params = config.training.candidates.scorecard[0].model_dump()
    return fit_model(
        Candidate("scorecard", params),
        encoded,
        y,
        schema=config.features,
        seed=config.training.seed,
        scaling=config.model.scorecard,
    )


@pytest.fixture(scope="module")
def matrix(model: ScoringModel, applicants: tuple[pd.DataFrame, np.ndarray]) -> np.ndarray:
    return model.encoder.encode_frame(applicants[0])


def test_each_applicants_points_sum_to_the_score_the_decision_engine_gives(
    model: ScoringModel, matrix: np.ndarray, config: ProjectConfig
) -> None:
    assert model.scorecard is not None
    points = model.scorecard.points(matrix)
    decided = DecisionEngine(model, config.model).decide(matrix, with_reasons=False)
    assert np.all(points == np.rint(points)), "points are whole numbers"
    np.testing.assert_array_equal(decided.score, points.sum(axis=1).astype(np.int64))


def test_the_score_turned_back_into_a_probability_is_predict_proba(
    model: ScoringModel, matrix: np.ndarray, config: ProjectConfig
) -> None:
    scaling = config.model.scorecard
    score = DecisionEngine(model, config.model).decide(matrix, with_reasons=False).score
    back = 1.0 / (1.0 + np.exp((score - scaling.offset) / scaling.factor))
    np.testing.assert_allclose(back, model.predict_proba(matrix), rtol=0, atol=1e-9)


def test_weight_of_evidence_and_points_keep_every_declared_direction(model: ScoringModel) -> None:
    assert model.scorecard is not None
    declared = 0
    for spec, characteristic in zip(model.encoder.fields, model.scorecard.characteristics, strict=True):
        if not spec.monotone_sign:
            continue
        declared += 1
        woe = np.asarray([a.woe for a in characteristic.present])
        # a higher value raising the risk is a falling WoE (share of goods over share of bads)
        assert np.all(np.diff(woe) * spec.monotone_sign <= 0), (spec.name, woe.tolist())
        assert len(woe) >= 2, f"{spec.name}: binned into one attribute only"
    assert declared == 2, "German Credit's schema declares two directions"
    assert respects_monotone(model)


def test_the_sql_export_scores_10000_rows_as_python_does(
    model: ScoringModel, config: ProjectConfig, applicants: tuple[pd.DataFrame, np.ndarray]
) -> None:
    assert model.scorecard is not None
    frame = generate_applicants(applicants[0], config.features, rows=SQL_ROWS, seed=3, include_protected=False)
    frame = frame[config.features.input_names]
    database = sqlite3.connect(":memory:")
    frame.to_sql("applicants", database, index=False)
    query = model.scorecard.to_sql("applicants")
    rows = database.execute(f"SELECT score FROM ({query.rstrip().rstrip(';')}) ORDER BY rowid").fetchall()
    from_sql = np.asarray([row[0] for row in rows], dtype=np.float64)
    python = model.scorecard.score(model.encoder.encode_frame(frame))
    assert len(from_sql) == SQL_ROWS
    np.testing.assert_array_equal(from_sql, python)


def test_the_scorecard_round_trips_through_plain_data_files(
    model: ScoringModel, matrix: np.ndarray, tmp_path: Path
) -> None:
    model.save(tmp_path / "scorecard")
    assert (tmp_path / "scorecard" / SCORECARD_FILE).is_file()
    assert not list(tmp_path.rglob("*.pkl"))
    loaded = ScoringModel.load(tmp_path / "scorecard")
    assert loaded.kind == "scorecard"
    np.testing.assert_array_equal(loaded.predict_proba(matrix), model.predict_proba(matrix))
    np.testing.assert_array_equal(loaded.field_contributions(matrix), model.field_contributions(matrix))


def test_reasons_are_the_points_lost_against_each_characteristics_best_attribute(
    model: ScoringModel, applicants: tuple[pd.DataFrame, np.ndarray], config: ProjectConfig
) -> None:
    assert model.scorecard is not None
    engine = DecisionEngine(model, config.model)
    records = applicants[0].head(40).to_dict("records")
    points = model.scorecard.points(model.encoder.encode_records(records))
    best = np.asarray([c.best_points for c in model.scorecard.characteristics])
    names = [f.name for f in model.encoder.fields]
    for row, assessment in enumerate(engine.assess(records)):
        lost = best - points[row]
        expected = [names[i] for i in np.argsort(-lost, kind="stable") if lost[i] > 0][
            : config.model.decision.max_reasons
        ]
        assert [r.field for r in assessment.reasons] == expected
        for reason in assessment.reasons:
            assert reason.contribution * model.scorecard.factor == pytest.approx(lost[names.index(reason.field)])


def test_the_points_table_names_each_attribute_in_the_schemas_words(model: ScoringModel) -> None:
    assert model.scorecard is not None
    rows = list(csv.reader(io.StringIO(model.scorecard.points_csv())))
    assert tuple(rows[0]) == POINTS_TABLE_HEADER
    body = rows[1:]
    assert len(body) == sum(len(c.attributes) for c in model.scorecard.characteristics)
    assert any("Overdrawn (below 0 DM)" in row[2] for row in body), "categories read as the schema's labels"
    numeric = {f.name for f in model.encoder.fields if f.is_numeric}
    ranges = [row[2] for row in body if row[1] in numeric]
    assert any(" to " in label or " or more" in label for label in ranges), ranges
    assert not any(ch in label for label in ranges for ch in "[]()<>,"), "no interval notation"


def test_recourse_moves_a_declined_applicants_numbers_across_the_scorecards_bin_edges(
    model: ScoringModel, applicants: tuple[pd.DataFrame, np.ndarray], config: ProjectConfig
) -> None:
    assert model.scorecard is not None
    engine = DecisionEngine(model, config.model)
    search = RecourseSearch(engine, config.model.recourse)
    records = applicants[0].head(300).to_dict("records")
    declined = [
        r for r, a in zip(records, engine.assess(records, with_reasons=False), strict=True) if a.decision == "decline"
    ]
    assert declined
    answers = [search.search(record, decision="decline") for record in declined]
    assert sum(bool(a.alternatives) for a in answers) >= 0.9 * len(declined)
    numeric = {f.name: i for i, f in enumerate(model.encoder.fields) if f.is_numeric}
    for record, answer in zip(declined, answers, strict=True):
        for alternative in answer.alternatives:
            changed = {**record, **{c.field: c.to_value for c in alternative.changes}}
            before, after = model.scorecard.points(model.encoder.encode_records([record, changed]))
            for change in alternative.changes:
                if change.field in numeric:  # a number moved into another attribute: its points changed
                    assert after[numeric[change.field]] > before[numeric[change.field]], change
