"""HTTP benchmark: this service against ``mlflow models serve`` and a constant-answer endpoint.

``python -m bench.http_bench [--duration 15] [--connections 32] [--threads 2] [--durability]``.

``--durability`` runs only the prediction log's cost arms instead: this service
with ``prediction_log.durability: fsync`` (every answer waits for its record's
group-committed fsync) against ``interval`` (answers do not wait), reasons on
and off, each arm ``--rounds`` times in alternation (a shared machine drifts), and prints
the req/s and p99 ratios (target: fsync no more than 15% fewer req/s).

In one run, on 127.0.0.1 and one after the other (so they never compete for
the CPU): ``mlflow models serve`` on the registered production version, this
service on the same version as ``make serve`` runs it (``python -m
serving.app``, one worker; the durable log and reasons on, then reasons off, the
log off, the fast path off and group commit off; ``--workers-arm`` adds two
workers), and a FastAPI endpoint that answers a constant. Each gets the same
``wrk`` load (fixed threads, connections and duration, after a warm-up) with
the same applicant, and the run prints req/s, p50, p99, errors and RSS per
server and the ratios the issue sets targets for. Then (``--ceiling-rounds``, 3)
the headline arm and the constant endpoint run again in alternating pairs, and
it prints each pair's ratio and their median: on a machine whose speed drifts
by up to 1.4x from one arm to the next, the figure to read. Uses the model in the
default store (``mlruns/``, created by ``make up``); without one it trains and
promotes one into a temporary store first.
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
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from credit_risk import registry
from credit_risk.config import PROJECT_ROOT, Settings, load_project_config
from serving.prediction_log.wal import SegmentFile

LUA = """wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
"""


@dataclass
class Result:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    rss_mb: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _group(pgid: int) -> Iterator[tuple[str, Path]]:
    """(state, /proc folder) of every process in the group (mlflow serve runs its server as a child)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[2] == str(pgid):
            yield fields[0], stat.parent


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group is still running (zombies excluded)."""
    return any(state != "Z" for state, _ in _group(pgid))


def _group_rss_mb(pgid: int) -> float:
    """Resident memory of every process in the group."""
    total_kb = 0
    for _, folder in _group(pgid):
        try:
            status = (folder / "status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        total_kb += int(match.group(1)) if match else 0
    return total_kb / 1024


def _wait(url: str, timeout: float, body: bytes | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.HTTPError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} not ready after {timeout}s")
        time.sleep(0.2)


@contextlib.contextmanager
def _server(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, env=env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        # the next server is measured on a quiet machine: mlflow serve's workers go on answering the
        # requests queued behind wrk's timeouts after their parent is gone
        for signal_after in (signal.SIGKILL, None):
            deadline = time.monotonic() + 10
            while _group_alive(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not _group_alive(proc.pid):
                break
            if signal_after is None:
                print(f"warning: processes of group {proc.pid} outlived SIGKILL", file=sys.stderr)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal_after)


def _wrk(url: str, script: Path, *, threads: int, connections: int, duration: int) -> tuple[float, float, float, int]:
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def percentile(p: str) -> float:
        value, unit = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = 0
    for pattern in (r"Non-2xx or 3xx responses:\s+(\d+)", r"Socket errors:.*?timeout (\d+)"):
        match = re.search(pattern, out)
        errors += int(match.group(1)) if match else 0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+)", out)
    if socket_errors:
        errors += sum(int(x) for x in socket_errors.groups())
    return rps, percentile("50"), percentile("99"), errors


def _measure(
    name: str,
    args: list[str],
    env: dict[str, str],
    *,
    ready: str,
    url: str,
    body: str,
    work: Path,
    opts: argparse.Namespace,
) -> Result:
    script = work / f"{re.sub(r'[^a-z0-9]+', '-', name.lower())}.lua"
    script.write_text(LUA.format(body=body))
    with _server(args, env, work / f"{script.stem}.log") as proc:
        try:
            _wait(ready, 180)
        except TimeoutError:
            print((work / f"{script.stem}.log").read_text()[-3000:], file=sys.stderr)
            raise
        _wrk(url, script, threads=opts.threads, connections=opts.connections, duration=opts.warmup)
        rps, p50, p99, errors = _wrk(
            url, script, threads=opts.threads, connections=opts.connections, duration=opts.duration
        )
        rss = _group_rss_mb(proc.pid)
    result = Result(name, rps, p50, p99, errors, rss)
    print(f"  {name:<44} {rps:>9.0f} req/s  p50 {p50:>7.2f} ms  p99 {p99:>7.2f} ms  errors {errors}  RSS {rss:.0f} MB")
    return result


def _print_fsync_cost(folder: Path, rounds: int = 300) -> None:
    """What one group's write and fdatasync costs on this disk right now, in the write-ahead file as the log
    writes it (over zeros written ahead) and as a plain append (the file grows, so every fdatasync also
    commits its new size to the file system's journal)."""
    group = (b'{"r":{"f":"' + b"x" * 1000 + b'"}}\n') * 12  # about a group of 12 records under load
    medians = {}
    for zero_fill in (False, True, False, True):
        path = folder / f"fsync-probe-{zero_fill}"
        file = SegmentFile(path, zero_fill=zero_fill)
        times = []
        try:
            for _ in range(rounds):
                started = time.perf_counter()
                file.append(group, sync=True)
                times.append((time.perf_counter() - started) * 1000)
        finally:
            file.close(sync=False)
            path.unlink()
        medians.setdefault(zero_fill, []).append(statistics.median(times))
    append, zeros = min(medians[False]), min(medians[True])
    print(f"write + fdatasync of a 12-record group: {zeros:.2f} ms over zeros written ahead (as the log writes),")
    print(f"  {append:.2f} ms as a plain append ({zeros / append:.0%}); median of {rounds}, the better of two")


def _print_durability(results: dict[str, Result]) -> None:
    """fsync against interval, per reasons setting, over the rounds (mean req/s, worst p99)."""
    print("\ndurable log cost (target: fsync >= 85% of interval's req/s)")
    for label in ("reasons on", "reasons off"):
        arms = {
            mode: [r for name, r in results.items() if name.startswith(f"log {mode}, {label},")]
            for mode in ("fsync", "interval")
        }
        rps = {mode: sum(r.requests_per_second for r in rs) / len(rs) for mode, rs in arms.items()}
        p99 = {mode: max(r.p99_ms for r in rs) for mode, rs in arms.items()}
        print(
            f"  {label:<12} fsync {rps['fsync']:>7.0f} req/s p99 {p99['fsync']:.2f} ms | interval "
            f"{rps['interval']:>7.0f} req/s p99 {p99['interval']:.2f} ms | fsync/interval "
            f"{rps['fsync'] / rps['interval']:.1%} req/s"
        )


def _config_dir(target: Path, serving: dict, prediction_log: dict | None = None) -> Path:
    """A copy of ``config/`` with some ``serving:`` (and ``prediction_log:``) keys changed."""
    shutil.copytree(PROJECT_ROOT / "config", target)
    path = target / "model_config.yaml"
    data = yaml.safe_load(path.read_text())
    data["serving"] = {**data.get("serving", {}), **serving}
    data["prediction_log"] = {**data.get("prediction_log", {}), **(prediction_log or {})}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


def _registered_version(work: Path) -> tuple[str, str]:
    """(tracking URI, version) of the production model: the default store's, else a fresh one."""
    settings = Settings()
    config = load_project_config(settings.config_dir)
    client = registry.connect(settings, PROJECT_ROOT)
    uri = client.tracking_uri
    try:
        version = registry.resolve(client, config.model.registry)
        return uri, str(version.version)
    except Exception:
        print("no production model in the default store: training and promoting one (a few minutes)")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    for module in ("pipelines.train", "pipelines.promote"):
        subprocess.run([sys.executable, "-m", module], cwd=PROJECT_ROOT, env=env, check=True)
    client = registry.connect(Settings(MLFLOW_TRACKING_URI=uri), PROJECT_ROOT)
    return uri, str(registry.resolve(client, config.model.registry).version)


def profile_hot_path(uri: str, rounds: int = 3000) -> None:
    """Where one request's server-side time goes: parse + validate, score (with and without reasons), encode."""
    import cProfile
    import pstats

    import orjson

    from serving.predict import score_records
    from serving.state import ModelHolder

    settings = Settings(MLFLOW_TRACKING_URI=uri)
    config = load_project_config(settings.config_dir)
    holder = ModelHolder(config=config, client_factory=lambda: registry.connect(settings, PROJECT_ROOT))
    holder.refresh()
    served = holder.served
    assert served is not None, holder.last_reload
    body = orjson.dumps(config.features.example_record())

    def request(reasons: bool) -> bytes:
        started = time.perf_counter()
        record = served.parser.single(body)
        scored = score_records(
            served,
            [record],
            request_ids=["x"],
            batch_id=None,
            with_reasons=reasons,
            policy_version="p",
            started=started,
        )
        return orjson.dumps(scored.results[0])

    for reasons in (False, True):
        for _ in range(200):
            request(reasons)
        started = time.perf_counter()
        for _ in range(rounds):
            request(reasons)
        per_call = (time.perf_counter() - started) / rounds * 1e6
        print(f"\nserver-side work per request, reasons {'on' if reasons else 'off'}: {per_call:.0f} us")
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(rounds):
            request(reasons)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15, help="seconds of measured load per server")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load first")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--skip-mlflow", action="store_true", help="leave out mlflow models serve (slow to start)")
    parser.add_argument("--profile", action="store_true", help="also profile the scoring path in-process")
    parser.add_argument("--durability", action="store_true", help="only the durable log's cost: fsync vs interval")
    parser.add_argument("--rounds", type=int, default=2, help="with --durability: alternations of the arms")
    parser.add_argument(
        "--ceiling-rounds", type=int, default=3,
        help="then the headline (durable log, reasons on) and the constant endpoint alternated this many times",
    )  # fmt: skip
    parser.add_argument("--workers-arm", action="store_true", help="also `make serve WORKERS=2`")
    opts = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (scripts/install-system-deps.sh installs it)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="http-bench-") as tmp:
        work = Path(tmp)
        uri, version = _registered_version(work)
        config = load_project_config(Settings().config_dir)
        record = config.features.example_record()
        inputs = {name: record[name] for name in config.features.input_names}
        body = json.dumps(record)
        base_env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONUNBUFFERED": "1"}
        base_env.pop("CREDIT_RISK_ADMIN_TOKEN", None)
        print(
            f"model credit-risk version {version} from {uri}; wrk -t{opts.threads} -c{opts.connections} "
            f"-d{opts.duration}s (after {opts.warmup}s warm-up), 127.0.0.1, one uvicorn worker each"
        )
        results: dict[str, Result] = {}

        def run_service(name: str, serving: dict, query: str = "", log: dict | None = None, workers: int = 1) -> None:
            # as `make serve` runs it: python -m serving.app on the configured port (access log off by default)
            port = _free_port()
            config_dir = _config_dir(work / f"config-{len(results)}", {**serving, "port": port}, log)
            env = {
                **base_env,
                "CREDIT_RISK_CONFIG_DIR": str(config_dir),
                "CREDIT_RISK_LOG_DIR": str(work / f"log-{len(results)}"),
            }
            args = [sys.executable, "-m", "serving.app", "--workers", str(workers)]
            url = f"http://127.0.0.1:{port}/v1/predict{query}"
            results[name] = _measure(
                name, args, env, ready=f"http://127.0.0.1:{port}/ready", url=url, body=body, work=work, opts=opts,
            )  # fmt: skip

        if opts.durability:
            _print_fsync_cost(work)
            for round_ in range(1, opts.rounds + 1):
                for query, label in (("", "reasons on"), ("?reasons=false", "reasons off")):
                    for mode in ("fsync", "interval"):
                        log = {"durability": mode, "upload_artifacts": False}
                        run_service(f"log {mode}, {label}, round {round_}", {"prediction_log": True}, query, log)
            _print_durability(results)
            return 0
        if not opts.skip_mlflow:
            port = _free_port()
            mlflow_cli = str(Path(sys.executable).with_name("mlflow"))
            args = [mlflow_cli, "models", "serve", "-m", f"models:/credit-risk/{version}", "--env-manager", "local"]
            args += ["-h", "127.0.0.1", "-p", str(port), "-w", "1"]
            env = {**base_env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
            results["mlflow"] = _measure(
                "mlflow models serve", args, env, ready=f"http://127.0.0.1:{port}/ping",
                url=f"http://127.0.0.1:{port}/invocations", body=json.dumps({"dataframe_records": [inputs]}),
                work=work, opts=opts,
            )  # fmt: skip
        run_service("service: durable log, reasons on", {"prediction_log": True})
        run_service("service: durable log, reasons off", {"prediction_log": True}, "?reasons=false")
        run_service("service: log off, reasons on", {"prediction_log": False})
        run_service("service: durable log, reasons on, no fast path", {"fast_path": False})
        run_service("service: durable log, reasons on, no group commit", {}, log={"group_commit_ms": 0})
        if opts.workers_arm:
            run_service("service: durable log, reasons on, 2 workers", {}, workers=2)

        def run_constant(key: str, name: str) -> None:
            port = _free_port()
            args = [sys.executable, "-m", "uvicorn", "bench.constant_app:app", "--host", "127.0.0.1"]
            results[key] = _measure(
                name, [*args, "--port", str(port), "--no-access-log"], base_env,
                ready=f"http://127.0.0.1:{port}/docs", url=f"http://127.0.0.1:{port}/v1/predict", body=body,
                work=work, opts=opts,
            )  # fmt: skip

        run_constant("constant", "constant FastAPI endpoint")
        _print_ratios(results)
        if opts.ceiling_rounds:
            # one arm to the next drifts by up to 1.4x here: the headline ratio again, each round a pair in turn
            print(f"\nthe headline against the constant endpoint, {opts.ceiling_rounds} rounds in alternation")
            for round_ in range(1, opts.ceiling_rounds + 1):
                run_service(f"headline, round {round_}", {"prediction_log": True})
                run_constant(f"constant, round {round_}", f"constant FastAPI endpoint, round {round_}")
            _print_ceiling(results, opts.ceiling_rounds)
        if opts.profile:
            profile_hot_path(uri)
    return 0


def _print_ceiling(results: dict[str, Result], rounds: int) -> None:
    """Each round's ratio, the median of the rounds against the 40% target."""
    ratios = [
        results[f"headline, round {r}"].requests_per_second / results[f"constant, round {r}"].requests_per_second
        for r in range(1, rounds + 1)
    ]
    each = ", ".join(f"{ratio:.1%}" for ratio in ratios)
    print(f"  durable log, reasons on: {statistics.median(ratios):.1%} of constant, median of {each} (target 40%)")


def _print_ratios(results: dict[str, Result]) -> None:
    constant = results["constant"]
    mlflow = results.get("mlflow")
    print("\nratios (targets with the durable log and reasons on: >= 40% of constant, >= 60x mlflow's req/s,"
          " p99 <= 1/30 of mlflow's)")  # fmt: skip
    for name, result in results.items():
        if not name.startswith("service"):
            continue
        line = f"  {name:<44} {result.requests_per_second / constant.requests_per_second:>6.1%} of constant"
        if mlflow is not None:
            line += (
                f"  {result.requests_per_second / mlflow.requests_per_second:>6.1f}x mlflow req/s"
                f"  p99 1/{mlflow.p99_ms / result.p99_ms:.1f} of mlflow's"
            )
        print(line)


if __name__ == "__main__":
    raise SystemExit(main())
