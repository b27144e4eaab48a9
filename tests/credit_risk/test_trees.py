"""The numpy tree runtime against XGBoost: random models, random inputs, missing values included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credit_risk.config import PROJECT_ROOT
from credit_risk.data import load_applicants
from credit_risk.profile import build_profile
from credit_risk.schema import FeatureSchema
from credit_risk.scoring import BOOSTERS_ONLY_VARIABLE, Encoder, ScoringModel
from credit_risk.trees import TreeEnsemble, UnsupportedModelError, _applicants
from pipelines.candidates import Candidate, fit_model

pytestmark = pytest.mark.model

EXAMPLE = PROJECT_ROOT / "examples" / "home_equity"


def random_model(rng: np.random.Generator, *, depth: int, trees: int, columns: int, missing: float) -> tuple:
    """A booster trained on random data with some signal and ``missing`` of the cells NaN."""
    x = rng.normal(size=(400, columns)).astype(np.float32)
    x[:, 0] = np.rint(x[:, 0] * 2)  # a few repeated values: splits land on data values
    y = (x[:, 0] + rng.normal(size=400) + np.where(np.isnan(x[:, -1]), 1.0, 0.0) > 0).astype(int)
    x[rng.random(x.shape) < missing] = np.nan
    params = {
        "objective": "binary:logistic",
        "max_depth": depth,
        "eta": 0.3,
        "tree_method": "hist",
        "base_score": float(rng.uniform(0.2, 0.8)),
        "nthread": 1,
        "seed": int(rng.integers(1 << 16)),
    }
    booster = xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=trees)
    return booster, x


def random_rows(rng: np.random.Generator, x: np.ndarray, ensemble: TreeEnsemble, count: int) -> np.ndarray:
    """Training rows, values exactly on split thresholds, and NaN in a third of the cells."""
    rows = x[rng.integers(len(x), size=count)].copy()
    thresholds = ensemble._thresholds[np.isfinite(ensemble._thresholds)]
    if thresholds.size:
        on_split = rng.random(rows.shape) < 0.2
        rows[on_split] = rng.choice(thresholds, size=int(on_split.sum()))
    rows[rng.random(rows.shape) < 0.33] = np.nan
    rows[0] = np.nan  # every value missing: the default branches all the way down
    return rows


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    depth=st.integers(1, 4),
    trees=st.integers(1, 40),
    columns=st.integers(2, 6),
    missing=st.sampled_from([0.0, 0.1, 0.5]),
)
def test_probabilities_and_treeshap_match_xgboost_with_missing_values(
    seed: int, depth: int, trees: int, columns: int, missing: float
) -> None:
    rng = np.random.default_rng(seed)
    booster, x = random_model(rng, depth=depth, trees=trees, columns=columns, missing=missing)
    ensemble = TreeEnsemble.from_booster(booster)
    rows = random_rows(rng, x, ensemble, 64)
    expected = booster.inplace_predict(rows)
    np.testing.assert_allclose(ensemble.predict_proba(rows), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ensemble.predict_proba(rows[:1]), expected[:1], rtol=0, atol=1e-6)
    # a row alone takes the compiled walk, missing values included: the batch walk's margins, bit for bit
    complete = np.where(np.isnan(rows), np.float32(0.0), rows)
    for batch in (rows, complete):
        alone = np.array([ensemble.margin(row[None])[0] for row in batch])
        np.testing.assert_array_equal(alone, ensemble.margin(batch))
    np.testing.assert_allclose(ensemble.predict_proba(complete), booster.inplace_predict(complete), rtol=0, atol=1e-6)
    assert ensemble.shap is not None
    contributions = booster.predict(xgb.DMatrix(rows, nthread=1), pred_contribs=True)[:, :-1]
    got = np.stack([ensemble.column_contributions(row) for row in rows])
    np.testing.assert_allclose(got, contributions, rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def home_equity_model() -> ScoringModel:
    """An XGBoost model on the second example's file: optional fields, missing values."""
    schema = FeatureSchema.model_validate(yaml.safe_load((EXAMPLE / "config" / "features.yaml").read_text()))
    frame, label = load_applicants(EXAMPLE / "home_equity.csv", schema)
    matrix = Encoder(schema).encode_frame(frame)
    params = {"max_depth": 3, "learning_rate": 0.1, "n_estimators": 60, "subsample": 0.9, "colsample_bytree": 0.9}
    model = fit_model(Candidate("xgboost", params), matrix, label.to_numpy(), schema=schema, seed=0)
    model.profile = build_profile(schema, frame, model.predict_proba(matrix))
    return model


def test_the_load_time_check_covers_missing_values_and_realistic_numbers(home_equity_model: ScoringModel) -> None:
    records = _applicants(home_equity_model, 256, seed=0)
    dti = [r["debt_to_income"] for r in records]
    assert sum(v is None for v in dti) > 30, "optional fields are missing in some check rows"
    present = np.asarray([v for v in dti[2:] if v is not None])
    edges = home_equity_model.profile["features"]["debt_to_income"]["edges"]
    inside = np.mean((present >= edges[0]) & (present <= edges[-1]))
    assert inside > 0.6, "most check values fall where training applicants are, not uniformly over [0, 300]"
    TreeEnsemble.verified(home_equity_model)


def test_the_load_time_check_refuses_wrong_default_directions(
    home_equity_model: ScoringModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = TreeEnsemble.from_booster.__func__  # type: ignore[attr-defined]

    def flipped(cls: type[TreeEnsemble], booster: xgb.Booster) -> TreeEnsemble:
        ensemble = original(cls, booster)
        ensemble._default_right = ~ensemble._default_right
        return ensemble

    monkeypatch.setattr(TreeEnsemble, "from_booster", classmethod(flipped))
    with pytest.raises(UnsupportedModelError, match="differ from XGBoost"):
        TreeEnsemble.verified(home_equity_model)


def test_a_model_folder_with_imputation_round_trips(tmp_path: Path) -> None:
    schema = FeatureSchema.model_validate(yaml.safe_load((EXAMPLE / "config" / "features.yaml").read_text()))
    frame, label = load_applicants(EXAMPLE / "home_equity.csv", schema)
    matrix = Encoder(schema).encode_frame(frame)
    model = fit_model(Candidate("logistic", {"C": 0.3}), matrix, label.to_numpy(), schema=schema, seed=0)
    assert model.linear is not None and model.linear.impute is not None
    column = model.encoder.columns.index("debt_to_income")
    present = matrix[:, column][~np.isnan(matrix[:, column])]
    assert model.linear.impute[column] == pytest.approx(float(np.median(present)))
    model.save(tmp_path)
    loaded = ScoringModel.load(tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(matrix), model.predict_proba(matrix))
    assert not np.isnan(loaded.predict_proba(matrix)).any()


def test_the_parallel_kernels_have_their_own_cache_entries(tmp_path: Path) -> None:
    """numba names a cached compilation after the function, not its flags: a parallel build that shared
    the serial build's entry ran on one core. In a fresh cache, a serial then a parallel call of the ranking
    kernel leave two compilations, each under its own name; every parallel build is compiled as parallel."""
    script = (
        "import numpy as np\n"
        "from credit_risk.trees import kernels as k\n"
        "for run in (k._serial_top, k._parallel_top):\n"
        "    run(np.ones((3, 4)), 2)\n"
        "for build, parallel in ((k._serial_shap, False), (k._parallel_shap, True), (k._parallel_top, True)):\n"
        "    assert build.targetoptions.get('parallel', False) == parallel, build\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    names = sorted(p.name.split("-")[0] for p in tmp_path.rglob("*.nbi"))
    assert names == ["kernels._top_reasons_rows", "kernels._top_reasons_rows_parallel"]


_LOAD_IN_A_SERVICE_PROCESS = """
import sys
import numpy as np
from credit_risk.scoring import ScoringModel
from credit_risk.trees import TreeEnsemble
model = ScoringModel.load(sys.argv[1])
TreeEnsemble.verified(model)  # the service's check at load: XGBoost's probabilities and TreeSHAP
rows = np.load(sys.argv[3])
np.save(sys.argv[2], np.stack([model.predict_proba(rows), model.field_contributions(rows).sum(axis=1)]))
print("sklearn" in sys.modules, "xgboost" in sys.modules)
"""


def test_the_service_loads_and_runs_a_booster_without_importing_scikit_learn(
    home_equity_model: ScoringModel, tmp_path: Path
) -> None:
    """``python -m serving.app`` sets CREDIT_RISK_XGBOOST_BOOSTERS_ONLY: a booster loads, passes the
    check against XGBoost and answers as in a process with scikit-learn, which is never imported."""
    model = home_equity_model
    frame, _ = load_applicants(EXAMPLE / "home_equity.csv", model.schema)
    matrix = model.encoder.encode_frame(frame)
    model.save(tmp_path / "model")
    np.save(tmp_path / "matrix.npy", matrix[:50])
    expected = np.stack([model.predict_proba(matrix[:50]), model.field_contributions(matrix[:50]).sum(axis=1)])
    env = {**os.environ, BOOSTERS_ONLY_VARIABLE: "1"}
    args = [tmp_path / "model", tmp_path / "answers.npy", tmp_path / "matrix.npy"]
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_IN_A_SERVICE_PROCESS, *map(str, args)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["False", "True"], "scikit-learn was imported beside XGBoost"
    np.testing.assert_allclose(np.load(tmp_path / "answers.npy"), expected, rtol=0, atol=1e-6)
