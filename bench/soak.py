"""Soak: a long fixed-rate load with alias moves and a SIGTERM/restart, on a real uvicorn process.

``python -m bench.soak --minutes 10`` (not in CI; about ``minutes`` + 2 minutes of wall time).

In one run, on 127.0.0.1: train two small versions into a throw-away SQLite
store (the project's own train and promote jobs), start the service (one
worker, polling the alias every 2 s), measure its capacity for a few seconds
with the open-loop generator (:mod:`bench.loadgen`) flat out (it shares the
machine's cores with the service, so that is what it can drive; ``wrk``'s
figure is reported beside it), then drive it at half that rate for
``--minutes``. Every minute the serving alias moves to the other version; in
the middle the service gets SIGTERM and is started again on the same port and
log directory. At the end the service is stopped gracefully and the prediction
log is read back.

Reported: errors (target 0; requests refused while the service was down for
the restart are counted apart, they are the expected cost of a restart with one
instance), lost log rows (answered but not logged, target 0), p50/p99 latency
and errors per minute, the versions that answered each minute, and RSS of the
service at the start and end of each process's life (target: growth <= 10%).
The figures go to stdout and to ``bench/results/soak-<time>.json``.
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
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import yaml

from bench.loadgen import CLEAN_REFUSALS, OVERLOAD, BackgroundLoad, LoadReport, Outcome, percentile, run_load
from bench.monitor_bench import FAST_TRAINING
from credit_risk import lifecycle, registry
from credit_risk.config import DEFAULT_CONFIG_DIR, PROJECT_ROOT, ProjectConfig, Settings, load_project_config

RESULTS = PROJECT_ROOT / "bench" / "results"
WRK_LUA = 'wrk.method = "POST"\nwrk.body = [==[{body}]==]\nwrk.headers["Content-Type"] = "application/json"\n'


# ------------------------------------------------------------------ setup


def _store(work: Path, poll_seconds: float) -> tuple[ProjectConfig, Settings, str, str]:
    """A throw-away store with two versions (the first in production); artifacts stay under ``work``."""
    from pipelines.promote import promote
    from pipelines.train import train

    config_dir = work / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, config_dir)
    training = yaml.safe_load((config_dir / "training.yaml").read_text())
    training.update(FAST_TRAINING)
    training["data"]["path"] = str(PROJECT_ROOT / training["data"]["path"])
    (config_dir / "training.yaml").write_text(yaml.safe_dump(training))
    model = yaml.safe_load((config_dir / "model_config.yaml").read_text())
    model["serving"]["poll_interval_seconds"] = poll_seconds
    (config_dir / "model_config.yaml").write_text(yaml.safe_dump(model, sort_keys=False))
    settings = Settings(MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}", CREDIT_RISK_CONFIG_DIR=config_dir)
    config = load_project_config(config_dir, root=work)
    first = str(train(config, settings).version)
    promote(config, settings, reason="soak: first model")
    second = str(train(config, settings).version)
    return config, settings, first, second


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited with {proc.returncode} before it was ready")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/ready", timeout=2) as response:
            if response.status == 200:  # a 503 raises HTTPError (an OSError): not ready yet
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout:.0f}s")


@dataclass
class Service:
    """The uvicorn process (restartable on the same port and log directory)."""

    port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [sys.executable, "-m", "uvicorn", "serving.app:app", "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*args, "--no-access-log"],
                env=self.env,
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _wait_ready(self.url, self.proc)

    def rss_mb(self) -> float:
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        return int(match.group(1)) / 1024 if match else float("nan")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait (the service drains and flushes its log); SIGKILL after ``timeout``."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


@contextlib.contextmanager
def _running(service: Service) -> Iterator[Service]:
    service.start()
    try:
        yield service
    finally:
        if service.proc is not None and service.proc.poll() is None:
            service.stop()


# ------------------------------------------------------------------ measuring


def _capacity(url: str, body: bytes, seconds: int, work: Path) -> dict[str, float | None]:
    """Answers per second flat out: through this package's generator (which shares the machine's
    cores with the service, so this is what the soak can drive) and, for reference, through ``wrk``."""
    report = run_load(url, rate=5000, duration=seconds, body=body, max_in_flight=64, id_prefix="capacity")
    figures: dict[str, float | None] = {"loadgen_rps": round(len(report.answered()) / report.elapsed, 1)}
    wrk = shutil.which("wrk")
    figures["wrk_rps"] = None
    if wrk:
        script = work / "post.lua"
        script.write_text(WRK_LUA.format(body=body.decode()))
        out = subprocess.run(
            [wrk, "-t2", "-c16", f"-d{seconds}s", "-s", str(script), f"{url}/v1/predict"],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        figures["wrk_rps"] = float(match.group(1)) if match else None
    return figures


@dataclass
class Events:
    """What the soak did and when, on the load's clock (seconds)."""

    moves: list[tuple[float, str]] = field(default_factory=list)
    sigterm_at: float | None = None
    ready_again_at: float | None = None
    rss: list[tuple[float, str, float]] = field(default_factory=list)  # (time, which process, MB)


def _per_minute(report: LoadReport, events: Events, minutes: int) -> list[dict[str, Any]]:
    rows = []
    for minute in range(minutes):
        start, end = minute * 60.0, (minute + 1) * 60.0
        due = [o for o in report.outcomes if start <= o.due < end]
        answered = [o for o in due if o.ok]
        rows.append(
            {
                "minute": minute + 1,
                "sent": len(due),
                "answered": len(answered),
                "errors": sum(1 for o in due if _is_error(o, events)),
                "restart_refused": sum(1 for o in due if _in_restart_gap(o, events) and not o.ok),
                "not_sent": sum(1 for o in due if o.error == OVERLOAD),
                "p50_ms": _r(percentile([o.latency_ms for o in answered], 50)),
                "p99_ms": _r(percentile([o.latency_ms for o in answered], 99)),
                "versions": sorted({o.version for o in answered if o.version}),
            }
        )
    return rows


def _in_restart_gap(outcome: Outcome, events: Events) -> bool:
    if events.sigterm_at is None:
        return False
    end = events.ready_again_at if events.ready_again_at is not None else float("inf")
    return events.sigterm_at <= outcome.sent <= end


def _is_error(outcome: Outcome, events: Events) -> bool:
    """Not answered, and not a clean refusal during the restart gap."""
    if outcome.ok or outcome.error == OVERLOAD:  # never sent: the generator's limit, counted apart
        return False
    refused_cleanly = outcome.error in CLEAN_REFUSALS or outcome.status == 503
    return not (refused_cleanly and _in_restart_gap(outcome, events))


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _log_rows(log_dir: Path) -> list[str]:
    if not any(log_dir.rglob("*.parquet")):
        return []
    table = ds.dataset(log_dir, format="parquet", partitioning="hive").to_table(columns=["request_id"])
    return table.column("request_id").to_pylist()


# ------------------------------------------------------------------ the soak


def soak(minutes: int, *, rate: float | None, capacity_seconds: int, work: Path) -> dict[str, Any]:
    print(f"training two versions into {work} ...", flush=True)
    config, settings, first, second = _store(work, poll_seconds=2.0)
    client = registry.connect(settings, config.root)
    reg = config.model.registry
    body = json.dumps(config.features.example_record()).encode()
    log_dir = work / "prediction-log"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri or "",
        "CREDIT_RISK_CONFIG_DIR": str(config.config_dir),
        "CREDIT_RISK_LOG_DIR": str(log_dir),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CREDIT_RISK_ADMIN_TOKEN", None)
    service = Service(port=_free_port(), env=env, log_path=work / "service.log")
    events = Events()
    duration = minutes * 60.0
    restart_at = (minutes // 2) * 60.0 + 30.0 if minutes > 1 else duration / 2
    with _running(service):
        capacity = _capacity(service.url, body, capacity_seconds, work)
        target = rate or round(capacity["loadgen_rps"] / 2, 1)
        print(f"capacity {capacity} req/s; soaking at {target} req/s for {minutes} min", flush=True)
        time.sleep(2.0)
        load = BackgroundLoad(
            service.url, rate=target, duration=duration, body=body, max_in_flight=256, id_prefix="soak"
        )
        with load:
            events.rss.append((0.0, "first", service.rss_mb()))
            next_move, current = 60.0, first
            next_rss = 10.0
            while load.elapsed() < duration and load.is_running():
                now = load.elapsed()
                if now >= next_move and now < duration - 5:
                    current = second if current == first else first
                    lifecycle.move_alias(
                        client, reg.model_name, reg.serving_alias, current, action="soak", reason="soak"
                    )
                    events.moves.append((round(now, 2), current))
                    print(f"{now:7.1f}s alias -> version {current}", flush=True)
                    next_move += 60.0
                if events.sigterm_at is None and now >= restart_at:
                    events.rss.append((round(now, 2), "first", service.rss_mb()))
                    events.sigterm_at = round(load.elapsed(), 3)
                    code = service.stop()
                    print(f"{events.sigterm_at:7.1f}s SIGTERM: exited {code}; restarting", flush=True)
                    service.start()
                    events.ready_again_at = round(load.elapsed(), 3)
                    events.rss.append((events.ready_again_at, "second", service.rss_mb()))
                    print(f"{events.ready_again_at:7.1f}s ready again", flush=True)
                if now >= next_rss and service.proc and service.proc.poll() is None:
                    events.rss.append((round(now, 2), "second" if events.sigterm_at else "first", service.rss_mb()))
                    next_rss += 10.0
                time.sleep(0.2)
            report = load.wait(timeout=duration + 120)
        events.rss.append((round(report.elapsed, 2), "second" if events.sigterm_at else "first", service.rss_mb()))
        exit_code = service.stop()
    return _summarise(report, events, minutes, capacity, target, log_dir, exit_code)


def _summarise(
    report: LoadReport,
    events: Events,
    minutes: int,
    capacity: dict[str, float | None],
    target: float,
    log_dir: Path,
    exit_code: int,
) -> dict[str, Any]:
    answered = {o.answered_id for o in report.answered()}
    logged = [rid for rid in _log_rows(log_dir) if rid.startswith("soak-")]
    errors = [o for o in report.outcomes if _is_error(o, events)]
    refused = [o for o in report.outcomes if not o.ok and o.error != OVERLOAD and _in_restart_gap(o, events)]

    def rss(which: str) -> dict[str, float | None]:
        values = [mb for _, name, mb in events.rss if name == which]
        if not values:
            return {"start_mb": None, "end_mb": None, "growth_pct": None}
        return {
            "start_mb": round(values[0], 1),
            "end_mb": round(values[-1], 1),
            "growth_pct": round(100 * (values[-1] / values[0] - 1), 1),
        }

    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "minutes": minutes,
        "capacity_rps": capacity,
        "target_rps": target,
        "load": report.summary(),
        "errors": len(errors),
        "not_sent": sum(1 for o in report.outcomes if o.error == OVERLOAD),
        "error_examples": [
            {"due": round(o.due, 2), "status": o.status, "error": o.error, "detail": o.detail} for o in errors[:5]
        ],
        "restart": {
            "sigterm_at_s": events.sigterm_at,
            "ready_again_at_s": events.ready_again_at,
            "gap_s": round(events.ready_again_at - events.sigterm_at, 2)
            if events.sigterm_at is not None and events.ready_again_at is not None
            else None,
            "refused_requests": len(refused),
            "refusal_classes": sorted({o.error or str(o.status) for o in refused}),
        },
        "alias_moves": events.moves,
        "log": {
            "answered": len(answered),
            "logged": len(logged),
            "lost_rows": len(answered - set(logged)),
            "unanswered_rows": len(set(logged) - answered),
            "duplicate_rows": len(logged) - len(set(logged)),
        },
        "per_minute": _per_minute(report, events, minutes),
        "rss": {"first_process": rss("first"), "second_process": rss("second")},
        "final_exit_code": exit_code,
    }


def _print(result: dict[str, Any]) -> None:
    print(f"\ncapacity {result['capacity_rps']} req/s, load {result['target_rps']} req/s")
    print(f"errors: {result['errors']}   not sent (generator saturated): {result['not_sent']}")
    print(f"lost log rows: {result['log']['lost_rows']}   log: {result['log']}")
    restart = result["restart"]
    print(f"restart: gap {restart['gap_s']} s, {restart['refused_requests']} refused ({restart['refusal_classes']})")
    print(f"{'min':>4} {'sent':>6} {'ok':>6} {'err':>4} {'gap':>4} {'p50 ms':>7} {'p99 ms':>7}  versions")
    for row in result["per_minute"]:
        print(
            f"{row['minute']:>4} {row['sent']:>6} {row['answered']:>6} {row['errors']:>4} {row['restart_refused']:>4} "
            f"{row['p50_ms']!s:>7} {row['p99_ms']!s:>7}  {','.join(row['versions'])}"
        )
    for which, figures in result["rss"].items():
        print(f"RSS {which}: {figures}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--rate", type=float, default=None, help="requests/s (default: half the measured capacity)")
    parser.add_argument("--capacity-seconds", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (store, logs) and print its path")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="credit-risk-soak-"))
    try:
        result = soak(args.minutes, rate=args.rate, capacity_seconds=args.capacity_seconds, work=work)
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    _print(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"soak-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"figures written to {out.relative_to(PROJECT_ROOT)}")
    growth = [f["growth_pct"] for f in result["rss"].values() if f["growth_pct"] is not None]
    ok = result["errors"] == 0 and result["log"]["lost_rows"] == 0 and all(g <= 10 for g in growth)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
