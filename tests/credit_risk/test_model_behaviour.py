"""Model behaviour tier: what the registered model must do whatever its parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from credit_risk import registry
from credit_risk.data import load_applicants
from credit_risk.decision import DecisionEngine
from credit_risk.scoring import Encoder, ScoringModel
from pipelines.candidates import Candidate, fit_model
from tests.conftest import TrainedModel

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def served(trained: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> ScoringModel:
    local = registry.download_version(
        trained.store.client, "credit-risk", trained.version.version, tmp_path_factory.mktemp("model")
    )
    return ScoringModel.load(registry.scoring_dir(local))


@pytest.fixture(scope="module")
def applicants(trained: TrainedModel) -> pd.DataFrame:
    config = trained.store.config
    features, _ = load_applicants(config.resolve(config.training.data.path), config.features)
    return features


def test_monotone_fields_move_the_probability_the_configured_way(
    served: ScoringModel, applicants: pd.DataFrame
) -> None:
    for spec in served.schema.inputs:
        if not spec.monotone:
            continue
        for record in applicants.head(50).to_dict("records"):
            values = list(range(spec.min, min(spec.max, 80) + 1))
            p = served.predict_proba(served.encoder.encode_records([{**record, spec.name: v} for v in values]))
            assert np.all(np.diff(p) * spec.monotone_sign >= -1e-9), (
                f"{spec.name} moves the risk against its '{spec.monotone}' constraint"
            )


def test_the_same_input_gives_the_same_output(
    trained: TrainedModel, served: ScoringModel, applicants: pd.DataFrame
) -> None:
    engine = DecisionEngine(served, trained.store.config.model)
    records = applicants.head(20).to_dict("records")
    assert engine.assess(records) == engine.assess(records)


def test_score_falls_as_the_probability_of_default_rises(trained: TrainedModel, served: ScoringModel) -> None:
    engine = DecisionEngine(served, trained.store.config.model)
    p = np.linspace(0.001, 0.999, 500)
    assert np.all(np.diff(engine.scores(p)) <= 0)
    assert engine.scores(np.array([1 / 51]))[0] == 600, "600 points at 50:1 good:bad odds"
    assert engine.scores(np.array([1 / 101]))[0] == 620, "20 points to double the odds"


def test_one_applicants_score_band_and_decision_are_the_arrays_own(trained: TrainedModel, served: ScoringModel) -> None:
    """One applicant takes scalar arithmetic (no array calls): the same points, band and decision as a
    portfolio gets, on random probabilities and on each band edge and threshold and their neighbours."""
    engine = DecisionEngine(served, trained.store.config.model)
    edges = [*engine._band_list, engine.policy.approve_below, engine.policy.decline_at_or_above]
    near = [np.nextafter(e, d) for e in edges for d in (0.0, 1.0)]
    p = np.concatenate([np.random.default_rng(3).random(5000), edges, near, [0.0, 1.0, 1e-13, 1 - 1e-13]])
    scores, bands, decisions = engine.scores(p), engine.bands(p), engine.decisions(p)
    alone = [(engine.scores(q)[0], engine.bands(q)[0], engine.decisions(q)[0]) for q in p[:, None]]
    assert alone == list(zip(scores, bands, decisions, strict=True))
    assert len(set(decisions)) == 3 and len(set(bands)) == len(engine.band_names)


def test_contributions_add_up_to_the_model_margin(served: ScoringModel, applicants: pd.DataFrame) -> None:
    matrix = served.encoder.encode_frame(applicants.head(100))
    margin = served.booster.predict(xgb.DMatrix(matrix), output_margin=True)
    bias = served.booster.predict(xgb.DMatrix(matrix), pred_contribs=True)[:, -1]
    np.testing.assert_allclose(served.field_contributions(matrix).sum(axis=1) + bias, margin, rtol=1e-4, atol=1e-4)


def test_reasons_are_at_most_four_risk_raising_fields_largest_first(
    trained: TrainedModel, served: ScoringModel, applicants: pd.DataFrame
) -> None:
    engine = DecisionEngine(served, trained.store.config.model)
    for assessment in engine.assess(applicants.head(100).to_dict("records")):
        contributions = [r.contribution for r in assessment.reasons]
        assert len(contributions) <= 4
        assert all(c > 0 for c in contributions)
        assert contributions == sorted(contributions, reverse=True)
        assert not {r.field for r in assessment.reasons} & {"age_in_years", "foreign_worker", "personal_status_and_sex"}


def test_fast_record_encoding_equals_frame_encoding(served: ScoringModel, applicants: pd.DataFrame) -> None:
    sample = applicants.head(200)
    np.testing.assert_array_equal(
        served.encoder.encode_records(sample.to_dict("records")), served.encoder.encode_frame(sample)
    )


def test_logistic_model_round_trips_through_its_plain_data_format(
    trained: TrainedModel, tmp_path: Path, applicants: pd.DataFrame
) -> None:
    schema = trained.store.config.features
    _, label = load_applicants(trained.store.config.resolve(trained.store.config.training.data.path), schema)
    model = fit_model(
        Candidate("logistic", {"C": 0.3}), _matrix(schema, applicants), label.to_numpy(), schema=schema, seed=1
    )
    model.save(tmp_path / "lr")
    loaded = ScoringModel.load(tmp_path / "lr")
    matrix = loaded.encoder.encode_frame(applicants.head(50))
    np.testing.assert_allclose(loaded.predict_proba(matrix), model.predict_proba(matrix))
    assert not list(tmp_path.rglob("*.pkl"))


def _matrix(schema, frame: pd.DataFrame) -> np.ndarray:
    return Encoder(schema).encode_frame(frame)


def test_unknown_category_is_refused_by_the_pyfunc_path(served: ScoringModel, applicants: pd.DataFrame) -> None:
    frame = applicants.head(3).copy()
    frame.loc[1, "purpose"] = "holiday"
    with pytest.raises(ValueError, match=r"column 'purpose': 1 row\(s\) break the rule"):
        served.predict_frame(frame)
