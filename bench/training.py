"""Training pipeline benchmark: wall time, peak memory and the CV ROC-AUC reached.

``python -m bench.training`` (or ``make bench``). Runs the real training job
(``python -m pipelines.train``, the committed config: 10x3 repeated stratified
CV over the whole search) in a child process against a throw-away SQLite
store, and reads the child's peak RSS from the kernel. As a baseline in the
same run it times one plain fit of the selected candidate, so the ratio says
what the search, evaluation, plots and registration cost on top.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time

import mlflow

from credit_risk.config import PROJECT_ROOT, LogisticParams, ScorecardParams, XGBoostParams, load_project_config
from credit_risk.data import load_split
from credit_risk.scoring import Encoder
from pipelines.candidates import Candidate, fit_model


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "pipelines.train"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
        )
        wall = time.perf_counter() - started
        if result.returncode != 0:
            print(result.stderr[-3000:], file=sys.stderr)
            return 1
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        client = mlflow.MlflowClient(tracking_uri=uri)
        version = client.get_model_version_by_alias("credit-risk", "challenger")
        run = client.get_run(version.run_id)
    metrics, params = run.data.metrics, run.data.params
    config = load_project_config()
    split = load_split(config)
    kind = params["selected_kind"]
    chosen = {
        k.removeprefix("selected_"): v for k, v in params.items() if k.startswith("selected_") and k != "selected_kind"
    }
    params_model = {"xgboost": XGBoostParams, "logistic": LogisticParams, "scorecard": ScorecardParams}[kind]
    typed = params_model.model_validate(chosen).model_dump()  # MLflow params come back as strings
    matrix = Encoder(config.features).encode_frame(split.train_x)
    t0 = time.perf_counter()
    fit_model(
        Candidate(kind, typed),
        matrix,
        split.train_y.to_numpy(),
        schema=config.features,
        seed=1,
        scaling=config.model.scorecard,
    )
    one_fit = time.perf_counter() - t0
    candidates = config.training.candidates
    n_candidates = len(candidates.xgboost) + len(candidates.logistic_regression) + len(candidates.scorecard)
    print(
        f"training pipeline (CV {config.training.cv.folds}x{config.training.cv.repeats}, "
        f"{n_candidates} candidates, {os.cpu_count()} cores)"
    )
    print(f"  wall time           {wall:8.1f} s   (target <= 180 s)")
    print(f"  peak RSS            {peak_mib:8.0f} MiB")
    print(f"  selected            {kind} {typed}")
    print(
        f"  CV ROC-AUC          {metrics['roc_auc_cv_mean']:.4f} ± {metrics['roc_auc_cv_std']:.4f} "
        f"(LR baseline {metrics.get('baseline_roc_auc_cv_mean', float('nan')):.4f})"
    )
    print(
        f"  scorecard CV ROC-AUC {metrics['scorecard_roc_auc_cv_mean']:.4f} ± "
        f"{metrics['scorecard_roc_auc_cv_std']:.4f} (the benchmark in every validation report)"
    )
    print(
        f"  holdout ROC-AUC     {metrics['holdout_roc_auc']:.4f}  Gini {metrics['holdout_gini']:.4f}  "
        f"KS {metrics['holdout_ks']:.4f}  Brier {metrics['holdout_brier']:.4f}  "
        f"expected cost {metrics['holdout_expected_cost']:.3f}"
    )
    print(f"  one plain fit       {one_fit:8.3f} s   -> pipeline = {wall / one_fit:,.0f}x one fit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
