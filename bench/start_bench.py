"""What a service start costs: CPU and seconds from ``python -m serving.app`` to ``/ready``.

``python -m bench.start_bench [--rounds 6]``.

One run, on 127.0.0.1, against the default store's production model (a fresh store is trained and
promoted when there is none): the service started as ``make serve`` starts it, then again with its
start's garbage-collector pause undone (the baseline: ``serving.lifespan._collector_paused`` replaced
by a no-op before the service imports it), alternating, ``--rounds`` pairs. For each start, the CPU
the process used (user and system, from ``/proc``), its seconds to ``/ready`` and the memory of it
and its log converter at that moment; the run prints each arm's medians and their ratio. Target: the
start uses at most 95% of the baseline's CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.http_bench import _free_port, _group_rss_mb, _registered_version, _server, _wait
from bench.log_bench import cpu_seconds

BASELINE = (
    "import contextlib, sys, serving.lifespan as lifespan; lifespan._collector_paused = contextlib.nullcontext; "
    "from serving.app import main; raise SystemExit(main(sys.argv[1:]))"
)


@dataclass(frozen=True)
class Start:
    cpu_seconds: float
    seconds: float
    rss_mb: float


def _start(arm: str, env: dict[str, str], work: Path) -> Start:
    port = _free_port()
    code = ["-m", "serving.app"] if arm == "paused" else ["-c", BASELINE]
    args = [sys.executable, *code, "--workers", "1", "--port", str(port)]
    started = time.monotonic()
    with _server(args, env, work / f"{arm}-{port}.log") as process:
        _wait(f"http://127.0.0.1:{port}/ready", timeout=120)
        seconds = time.monotonic() - started
        cpu = cpu_seconds(process.pid)
        rss = _group_rss_mb(process.pid)  # its own session: the service and its log converter
    return Start(cpu_seconds=cpu, seconds=seconds, rss_mb=rss)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="pairs of starts (default 6)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="start-bench-") as tmp:
        work = Path(tmp)
        uri, version = _registered_version(work)
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": uri,
            "CREDIT_RISK_LOG_DIR": str(work / "prediction-log"),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
        }
        print(f"version {version} of {uri}; {args.rounds} pairs of starts, alternating")
        starts: dict[str, list[Start]] = {"paused": [], "baseline": []}
        for _ in range(args.rounds):
            for arm in ("paused", "baseline"):
                starts[arm].append(_start(arm, env, work))
        for arm, runs in starts.items():
            cpu = statistics.median(s.cpu_seconds for s in runs)
            seconds = statistics.median(s.seconds for s in runs)
            rss = statistics.median(s.rss_mb for s in runs)
            print(f"{arm:>8}: CPU to ready {cpu:.2f} s, {seconds:.2f} s to ready, {rss:.0f} MB at ready (medians)")
        ratio = statistics.median(s.cpu_seconds for s in starts["paused"]) / statistics.median(
            s.cpu_seconds for s in starts["baseline"]
        )
        print(f"CPU to ready, paused / baseline: {ratio:.2f} (target at most 0.95)")
        return 0 if ratio <= 0.95 else 1


if __name__ == "__main__":
    raise SystemExit(main())
