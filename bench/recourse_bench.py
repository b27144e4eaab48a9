"""What would change the decision: the latency of one recourse answer, against one decision.

``python -m bench.recourse_bench [--model-dir DIR] [--applicants 500] [--max-changes 2]``

The model is a registered version's folder (``--model-dir``, e.g. one downloaded from the
registry) or, by default, German Credit's shape of served model: the first XGBoost candidate
of ``config/training.yaml`` (depth 3, 400 trees) fitted on the committed data, scored through
the service's own runtime (:func:`credit_risk.trees.service_runtime`). The applicants are
declined ones: the data's own declines, then random applicants the model declines. Each answer
is timed as the service computes it (:meth:`RecourseSearch.search`, the rescoring of every
alternative included); the baseline, timed in the same run, is one applicant's decision with
its reasons (``DecisionEngine.decide`` on one row), what ``POST /v1/predict`` computes without
recourse. The goal: p99 of a recourse answer within 50 ms.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from credit_risk.config import RecourseConfig, load_project_config
from credit_risk.data import load_applicants
from credit_risk.decision import DecisionEngine
from credit_risk.recourse import RecourseSearch
from credit_risk.scoring import Encoder, ScoringModel
from credit_risk.trees import _applicants, service_runtime

GOAL_P99_MS = 50.0


def german_credit_model(model_dir: Path | None) -> tuple[ScoringModel, list[dict[str, Any]]]:
    """The model to bench and the data's applicants (inputs only)."""
    config = load_project_config()
    features, label = load_applicants(config.resolve(config.training.data.path), config.features)
    if model_dir is not None:
        return ScoringModel.load(model_dir), features.to_dict("records")
    from pipelines.candidates import Candidate, fit_model

    params = config.training.candidates.xgboost[0]
    params = params.model_dump() if hasattr(params, "model_dump") else dict(params)
    matrix = Encoder(config.features).encode_frame(features)
    model = fit_model(Candidate("xgboost", params), matrix, label.to_numpy(), schema=config.features, seed=42)
    return model, features.to_dict("records")


def declined(engine: DecisionEngine, model: ScoringModel, data: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    seed = 0
    pool = data
    while len(found) < n and seed < 50:
        decided = engine.decide(model.encoder.encode_records(pool), with_reasons=False)
        found += [r for r, d in zip(pool, decided.decision_index.tolist(), strict=True) if d == 2]
        pool = _applicants(model, 2000, seed)
        seed += 1
    return found[:n]


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {f"p{q}": round(float(np.percentile(ms, q)), 3) for q in (50, 90, 99)} | {"max": round(float(ms.max()), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--applicants", type=int, default=500)
    parser.add_argument("--max-changes", type=int, default=None, help="default: config/model_config.yaml's")
    args = parser.parse_args(argv)

    config = load_project_config()
    model, data = german_credit_model(args.model_dir)
    scorer, runtime = service_runtime(model, config.model.serving.tree_runtime)
    engine = DecisionEngine(scorer, config.model)  # type: ignore[arg-type]
    recourse = config.model.recourse
    if args.max_changes is not None:
        recourse = RecourseConfig(**{**recourse.model_dump(), "max_changes": args.max_changes})
    search = RecourseSearch(engine, recourse)
    applicants = declined(engine, model, data, args.applicants)

    for record in applicants[:20]:  # warm-up: first calls allocate
        search.search(record, decision="decline")
        engine.decide(model.encoder.encode_records([record]))
    baseline, timed, helped, alternatives = [], [], 0, 0
    for record in applicants:
        started = time.perf_counter()
        engine.decide(model.encoder.encode_records([record]), with_reasons=True)
        baseline.append(time.perf_counter() - started)
        started = time.perf_counter()
        answer = search.search(record, decision="decline")
        timed.append(time.perf_counter() - started)
        helped += bool(answer.alternatives)
        alternatives += len(answer.alternatives)
    found = percentiles(timed)
    base = percentiles(baseline)
    report = {
        "model": str(args.model_dir) if args.model_dir else "xgboost: config/training.yaml's first candidate",
        "runtime": runtime,
        "max_changes": recourse.max_changes,
        "declined_applicants": len(applicants),
        "with_an_alternative": helped,
        "alternatives_per_answer": round(alternatives / max(len(applicants), 1), 2),
        "recourse_ms": found,
        "one_decision_ms": base,
        "p99_ratio_to_one_decision": round(found["p99"] / base["p99"], 1),
        "goal_p99_ms": GOAL_P99_MS,
        "within_goal": found["p99"] <= GOAL_P99_MS,
    }
    print(json.dumps(report, indent=2))
    return 0 if report["within_goal"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
