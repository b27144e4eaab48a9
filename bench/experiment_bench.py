"""What a shadow costs: the service's throughput and p99 with and without a challenger in its shadow.

``python -m bench.experiment_bench [--duration 15] [--connections 32] [--threads 2] [--rounds 3] [--share 1.0]``.

One run, on 127.0.0.1: a temporary store with two versions of the production model's size (one
XGBoost candidate, 400 trees of depth 3, trained on the committed data; the challenger with
another column sampling), the service as ``make serve`` runs it (one worker, durable log, reasons
on) and the same ``wrk`` load as ``bench/http_bench.py``. The arms alternate on the same server
process (``--rounds`` pairs; a shared machine drifts): no experiment, then a shadow of ``--share``
of the applicants (started and stopped through the admin API), and the run prints each pair's
req/s and p99 ratios and their median. Target: the shadow keeps at least 70% of the req/s.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import yaml

from bench.http_bench import LUA, _config_dir, _free_port, _server, _wait, _wrk
from credit_risk.config import PROJECT_ROOT, Settings, load_project_config

TRAINING = {
    "cv": {"folds": 3, "repeats": 1},
    "candidates": {
        "xgboost": [
            {"max_depth": 3, "learning_rate": 0.03, "n_estimators": 400, "subsample": 0.8,
             "colsample_bytree": 0.4, "min_child_weight": 1},
        ]
    },
}  # fmt: skip


def _train_two(work: Path, env: dict[str, str]) -> None:
    """Version 1 (promoted) and version 2, of the production model's size."""
    for step, colsample in enumerate((0.4, 0.6)):
        config_dir = work / f"train-config-{step}"
        shutil.copytree(PROJECT_ROOT / "config", config_dir)
        path = config_dir / "training.yaml"
        data = yaml.safe_load(path.read_text())
        candidates = json.loads(json.dumps(TRAINING))
        candidates["candidates"]["xgboost"][0]["colsample_bytree"] = colsample
        data.update(candidates)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        run_env = {**env, "CREDIT_RISK_CONFIG_DIR": str(config_dir)}
        subprocess.run([sys.executable, "-m", "pipelines.train"], cwd=PROJECT_ROOT, env=run_env, check=True)
        if step == 0:
            promote = [sys.executable, "-m", "pipelines.promote", "--reason", "bench champion"]
            subprocess.run(promote, cwd=PROJECT_ROOT, env=run_env, check=True)


def _admin(url: str, token: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15, help="seconds of measured load per arm")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load before each arm")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="pairs of arms, alternated")
    parser.add_argument("--share", type=float, default=1.0, help="the share of applicants shadowed")
    opts = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (scripts/install-system-deps.sh installs it)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="experiment-bench-") as tmp:
        work = Path(tmp)
        uri = f"sqlite:///{work / 'mlflow.db'}"
        token = secrets.token_urlsafe(24)
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONUNBUFFERED": "1", "CREDIT_RISK_ADMIN_TOKEN": token}
        env.pop("CREDIT_RISK_APPROVER_TOKEN", None)
        print("training two versions of the production model's size into a temporary store (a few minutes)")
        _train_two(work, env)
        port = _free_port()
        config_dir = _config_dir(work / "config", {"port": port})
        env = {**env, "CREDIT_RISK_CONFIG_DIR": str(config_dir), "CREDIT_RISK_LOG_DIR": str(work / "log")}
        record = load_project_config(Settings().config_dir).features.example_record()
        script = work / "predict.lua"
        script.write_text(LUA.format(body=json.dumps(record)))
        base = f"http://127.0.0.1:{port}"
        load = {"threads": opts.threads, "connections": opts.connections}
        print(
            f"wrk -t{opts.threads} -c{opts.connections} -d{opts.duration}s (after {opts.warmup}s warm-up), "
            f"127.0.0.1, one uvicorn worker, durable log, reasons on; shadow of {opts.share:.0%} of applicants"
        )
        pairs = []
        with _server([sys.executable, "-m", "serving.app"], env, work / "service.log"):
            _wait(f"{base}/ready", 180)
            for round_ in range(1, opts.rounds + 1):
                arms = {}
                for arm in ("no experiment", "shadow"):
                    experiment = None
                    if arm == "shadow":
                        experiment = _admin(
                            f"{base}/v1/admin/experiments", token,
                            {"challenger_version": "2", "mode": "shadow", "share": opts.share, "reason": "bench"},
                        )["experiment"]  # fmt: skip
                    _wrk(f"{base}/v1/predict", script, duration=opts.warmup, **load)
                    rps, p50, p99, errors = _wrk(f"{base}/v1/predict", script, duration=opts.duration, **load)
                    arms[arm] = (rps, p99)
                    print(f"  round {round_} {arm:<14} {rps:>8.0f} req/s  p50 {p50:>6.2f} ms  p99 {p99:>6.2f} ms  "
                          f"errors {errors}")  # fmt: skip
                    if experiment is not None:
                        _admin(f"{base}/v1/admin/experiments/{experiment['id']}/stop", token, {"reason": "bench"})
                pairs.append(
                    (arms["shadow"][0] / arms["no experiment"][0], arms["shadow"][1] / arms["no experiment"][1])
                )
        throughput = [p[0] for p in pairs]
        tail = [p[1] for p in pairs]
        print("shadow / no experiment, per round: req/s " + ", ".join(f"{r:.1%}" for r in throughput)
              + "; p99 " + ", ".join(f"{r:.2f}x" for r in tail))  # fmt: skip
        median = statistics.median(throughput)
        print(f"median: {median:.1%} of the no-shadow req/s (target at least 70%), p99 {statistics.median(tail):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
