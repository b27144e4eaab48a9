"""A real uvicorn process under a fixed request rate, then SIGTERM while requests still flow.

One run (module fixture), several claims: steady load fails nothing; during the
shutdown every request is either answered or refused cleanly (never a 5xx other
than 503, never a cut response); readiness turns false before requests are
refused; and the prediction log holds exactly one row per answered request.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.loadgen import BackgroundLoad, LoadReport, Outcome, format_outcomes
from tests.conftest import TrainedModel
from tests.reliability.conftest import applicant_bytes, read_log
from tests.support.api import running_api

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]  # a hang guard (set-up trains models)

RATE = 60.0  # requests per second: modest, the machine is shared
STEADY_SECONDS = 12.0  # fixed-rate load before the SIGTERM
AFTER_SECONDS = 4.0  # the load keeps coming after it
SETTLE_SECONDS = 0.5  # requests sent this close to the SIGTERM may meet the shutdown


@dataclass(frozen=True)
class Probe:
    """One ``GET /ready`` during the run: ``result`` is the status code or the error class."""

    at: float
    result: int | str


class ReadyProbe:
    """Polls ``/ready`` on a fresh connection every ``every`` seconds, on the load's clock."""

    def __init__(self, url: str, origin: float, every: float = 0.025) -> None:
        self.url, self.origin, self.every = url, origin, every
        self.probes: list[Probe] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(timeout=2.0, limits=limits, trust_env=False) as client:
            while not self._stop.is_set():
                try:
                    result: int | str = client.get(f"{self.url}/ready").status_code
                except httpx.ConnectError:
                    result = "refused"
                except httpx.HTTPError as exc:
                    result = type(exc).__name__
                self.probes.append(Probe(time.perf_counter() - self.origin, result))
                self._stop.wait(self.every)

    def __enter__(self) -> ReadyProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


@dataclass(frozen=True)
class ShutdownRun:
    report: LoadReport
    sigterm_at: float  # on the load's clock
    probes: list[Probe]
    exit_code: int
    log_rows: list[dict[str, Any]]
    service_log: str
    grace_seconds: float  # serving.drain_grace_seconds: /ready is false and requests still served this long


@pytest.fixture(scope="module")
def run(trained: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShutdownRun]:
    tmp: Path = tmp_path_factory.mktemp("load-shutdown")
    body = applicant_bytes(trained.store)
    with running_api(trained.store, tmp_path=tmp) as api:
        load = BackgroundLoad(api.url, rate=RATE, duration=STEADY_SECONDS + AFTER_SECONDS, body=body)
        with load, ReadyProbe(api.url, origin=load.started_at) as probe:
            while load.elapsed() < STEADY_SECONDS:
                time.sleep(0.05)
            sigterm_at = load.elapsed()
            api.process.proc.send_signal(signal.SIGTERM)
            exit_code = api.process.proc.wait(timeout=60)
            report = load.wait()
        service_log = api.process.log_text()
    grace = trained.store.config.model.serving.drain_grace_seconds
    yield ShutdownRun(report, sigterm_at, list(probe.probes), exit_code, read_log(api.log_dir), service_log, grace)


def _describe(run: ShutdownRun) -> str:
    return f"{run.report.summary()} (SIGTERM at {run.sigterm_at:.2f}s)"


def test_steady_fixed_rate_load_fails_no_request(run: ShutdownRun) -> None:
    steady = [o for o in run.report.outcomes if o.sent < run.sigterm_at - SETTLE_SECONDS]
    failed = [o for o in steady if not o.ok]
    assert not failed, f"{len(failed)} of {len(steady)} failed: {format_outcomes(failed)}"
    assert len(steady) >= 0.9 * RATE * (STEADY_SECONDS - SETTLE_SECONDS), f"the load fell behind: {_describe(run)}"


def test_requests_during_shutdown_are_answered_or_refused_cleanly(run: ShutdownRun) -> None:
    bad = run.report.failures(allow_clean_refusals=True)
    assert not bad, f"answers that were neither complete nor a clean refusal: {format_outcomes(bad)}"
    gone = run.sigterm_at + run.grace_seconds + 1.5  # the drain grace, then a margin for the shutdown itself
    after = [o for o in run.report.outcomes if o.sent > gone]
    assert after and all(o.clean_refusal for o in after), f"still answering long after SIGTERM: {_describe(run)}"


def test_service_stops_gracefully_on_sigterm(run: ShutdownRun) -> None:
    assert run.exit_code in (0, -signal.SIGTERM), run.service_log[-3000:]
    assert "Application shutdown complete" in run.service_log, run.service_log[-3000:]


def test_every_answered_request_is_exactly_one_log_row(run: ShutdownRun) -> None:
    answered = sorted(o.answered_id for o in run.report.answered())
    logged = sorted(row["request_id"] for row in run.log_rows)
    missing = set(answered) - set(logged)
    assert not missing, f"{len(missing)} answered request(s) not in the log, e.g. {sorted(missing)[:3]}"
    assert len(logged) == len(set(logged)), "a request was logged twice"
    assert logged == answered, f"{len(set(logged) - set(answered))} logged request(s) that got no answer"


def test_readiness_turns_false_before_requests_are_refused(run: ShutdownRun) -> None:
    """A load balancer needs /ready to fail while the service still answers, so it stops routing to it
    before connections are refused."""
    after = [p for p in run.probes if p.at >= run.sigterm_at]
    first_not_ready = next((p for p in after if p.result != 200), None)
    assert first_not_ready is not None, "no /ready probe saw the shutdown"
    refused: list[Outcome] = [o for o in run.report.outcomes if o.clean_refusal and o.status != 503]
    first_refused = min((o.done for o in refused), default=float("inf"))
    assert first_not_ready.result == 503, (
        f"/ready went from 200 straight to {first_not_ready.result!r} at {first_not_ready.at:.3f}s "
        f"(SIGTERM at {run.sigterm_at:.3f}s): it never reported not-ready while the service still answered"
    )
    assert first_not_ready.at <= first_refused
