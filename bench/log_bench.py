"""Serving throughput with the prediction log on vs off, in one run.

``python -m bench.log_bench [--seconds 8] [--rounds 2] [--connections 8]``. Trains
a small model into a throw-away SQLite store, then runs the real service
(``uvicorn serving.app:app``, one worker, 127.0.0.1) with
``serving.prediction_log`` true and false in turn, each under ``wrk`` for the
same time, alternating the order over rounds so drift of the machine hits both
alike. Reports requests/s and latency percentiles per setting, the cost of
logging (target: <= 10% of throughput), and checks that the log holds one
row per answered request.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow.dataset as ds
import yaml

from bench.monitor_bench import trained_store
from credit_risk.config import PROJECT_ROOT, ProjectConfig, Settings

_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_COMPLETED = re.compile(r"(\d+) requests in")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_PERCENTILE = re.compile(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)


def config_variant(config: ProjectConfig, target: Path, *, logging_on: bool) -> Path:
    """A copy of the store's config folder with the prediction log switched on or off."""
    shutil.copytree(config.config_dir, target)
    path = target / "model_config.yaml"
    data = yaml.safe_load(path.read_text())
    data.setdefault("serving", {})["prediction_log"] = logging_on
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def service(settings: Settings, config_dir: Path, log_dir: Path) -> Iterator[tuple[str, int]]:
    """One uvicorn process, ready (model loaded and warm), stopped with SIGTERM at the end."""
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": str(settings.mlflow_tracking_uri),
        "CREDIT_RISK_CONFIG_DIR": str(config_dir),
        "CREDIT_RISK_LOG_DIR": str(log_dir),
    }
    args = [sys.executable, "-m", "uvicorn", "serving.app:app", "--host", "127.0.0.1", "--port", str(port)]
    with open(log_dir.parent / f"uvicorn-{port}.log", "wb") as output:
        proc = subprocess.Popen(
            [*args, "--no-access-log"], cwd=PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"service did not get ready: see {output.name}")
            time.sleep(0.2)
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, body: dict, *, query: str, seconds: int, connections: int, script_dir: Path) -> dict[str, float]:
    """``wrk`` posting one applicant over and over; requests/s, latency percentiles, non-2xx count."""
    script = script_dir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), f"{url}/v1/predict{query}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    figures = {f"p{p}_ms": float(v) * scale[unit] for p, v, unit in _PERCENTILE.findall(out)}
    non_2xx = _NON_2XX.search(out)
    return {
        "rps": float(_RPS.search(out).group(1)),  # type: ignore[union-attr]
        "completed": float(_COMPLETED.search(out).group(1)),  # type: ignore[union-attr]
        "non_2xx": float(non_2xx.group(1)) if non_2xx else 0.0,
        **figures,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=4, help="per wrk slice")
    parser.add_argument("--rounds", type=int, default=5, help="off/on pairs per setting")
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (scripts/install-system-deps.sh installs it)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="log-bench-") as name, contextlib.ExitStack() as stack:
        tmp = Path(name)
        config, settings = trained_store(tmp)
        body = config.features.example_record()
        urls, pids, log_dirs = {}, {}, {}
        for on in (False, True):
            log_dirs[on] = tmp / f"logs-{on}" / "predictions"
            log_dirs[on].mkdir(parents=True)
            variant = config_variant(config, tmp / f"config-{on}", logging_on=on)
            urls[on], pids[on] = stack.enter_context(service(settings, variant, log_dirs[on]))
        # both services run side by side; short slices alternate between them, so the machine's
        # background load (other jobs on a shared box) hits both alike; each pair gives one ratio
        results: dict[tuple[str, bool], list[dict[str, float]]] = {}
        answered = 0.0
        for query in ("", "?reasons=false"):
            for round_index in range(args.rounds):
                for on in (False, True) if round_index % 2 == 0 else (True, False):
                    cpu_before = cpu_seconds(pids[on])
                    figures = run_wrk(
                        urls[on], body, query=query, seconds=args.seconds, connections=args.connections, script_dir=tmp
                    )
                    # server CPU per answered request: far less sensitive to a busy machine than req/s
                    figures["cpu_us"] = (cpu_seconds(pids[on]) - cpu_before) / figures["completed"] * 1e6
                    if figures["non_2xx"]:
                        print(f"error: {figures['non_2xx']:.0f} non-2xx answers (log {on})", file=sys.stderr)
                        return 1
                    results.setdefault((query, on), []).append(figures)
                    answered += figures["completed"] if on else 0
        stack.close()  # SIGTERM both: the logging one drains its log
        rows = ds.dataset(log_dirs[True], format="parquet", partitioning="hive").count_rows()
    for query in ("", "?reasons=false"):
        off, on = results[(query, False)], results[(query, True)]
        ratios = [b["rps"] / a["rps"] for a, b in zip(off, on, strict=True)]
        cost = 1 - statistics.median(ratios)
        cpu_cost = statistics.median(r["cpu_us"] for r in on) / statistics.median(r["cpu_us"] for r in off) - 1
        label = "with reasons   " if query == "" else "without reasons"
        parts = []
        for tag, runs in (("off", off), ("on ", on)):
            parts.append(
                f"log {tag}: {statistics.median(r['rps'] for r in runs):7.1f} req/s "
                f"(p50 {statistics.median(r['p50_ms'] for r in runs):.2f} ms, "
                f"p99 {statistics.median(r['p99_ms'] for r in runs):.2f} ms, "
                f"server CPU {statistics.median(r['cpu_us'] for r in runs):.0f} us/request)"
            )
        print(
            f"{label} | " + " | ".join(parts) + f" | logging cost {cost:+.1%} (median of {len(ratios)} paired "
            f"slices; per pair: {', '.join(f'{1 - r:+.0%}' for r in ratios)}; target <= 10%); "
            f"CPU per request {cpu_cost:+.1%}"
        )
    print(f"log rows {rows} for {int(answered)} requests answered to wrk (+{args.connections} in flight per slice)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
