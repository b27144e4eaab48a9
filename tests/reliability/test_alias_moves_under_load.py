"""The serving alias moves while a fixed request rate flows through a real uvicorn process.

To a good version: every request succeeds, names its version, and the versions
switch exactly once. To a version whose artifacts were altered after
registration, or one that fails to load: refused, the old version keeps
serving, ``/v1/model`` says so. Two reloads at once load the version once.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bench.loadgen import BackgroundLoad, LoadReport, format_outcomes
from tests.reliability.conftest import (
    Fleet,
    applicant_bytes,
    model_info,
    move_alias,
    read_log,
    wait_until,
)
from tests.support.api import RunningApi, running_api

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]  # a hang guard (set-up trains models)

RATE = 50.0
MAX_SECONDS = 30.0  # the load's own bound; each test stops it as soon as it has seen enough


@pytest.fixture(scope="module")
def service(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    """One service for the module, following the fleet's alias (polls every 0.5 s)."""
    with running_api(fleet.store, tmp_path=tmp_path_factory.mktemp("alias-moves")) as api:
        yield api


@pytest.fixture
def serving_good(on_good: Fleet, service: RunningApi) -> Iterator[Fleet]:
    """The service serves ``fleet.good`` when the test starts (the previous test may have moved it)."""
    wait_until(lambda: model_info(service.url).get("version") == on_good.good, timeout=30, what="the good version")
    yield on_good


def _load(service: RunningApi, fleet: Fleet) -> BackgroundLoad:
    return BackgroundLoad(service.url, rate=RATE, duration=MAX_SECONDS, body=applicant_bytes(fleet.store))


def _no_failures(report: LoadReport) -> None:
    failures = report.failures()
    assert not failures, f"{len(failures)} failed request(s): {format_outcomes(failures)}"
    assert len(report.answered()) >= RATE, f"too little load to prove anything: {report.summary()}"


def _switched_once(report: LoadReport, old: str, new: str) -> None:
    """Every answer before the switch is from ``old``, every one after from ``new``; requests in flight at
    the switch (sent before the first ``new`` answer came back) may be answered by either."""
    versions = {o.version for o in report.answered()}
    assert versions == {old, new}, f"versions answered: {versions}"
    stale = report.stale_answers(new)
    assert not stale, f"{len(stale)} old-version answer(s) to requests sent after the switch: {format_outcomes(stale)}"


def _refusal_of(service: RunningApi, version: str) -> dict[str, Any]:
    """Wait for the poll to try ``version``; the ``/v1/model`` body that reports it."""

    def reported() -> dict[str, Any] | None:
        info = model_info(service.url)
        last = info.get("last_reload") or {}
        return info if last.get("version") == version else None

    return wait_until(reported, timeout=30, what=f"a reload attempt of version {version}")


def test_good_version_switches_once_and_every_answer_names_its_version(
    serving_good: Fleet, service: RunningApi
) -> None:
    fleet = serving_good
    with _load(service, fleet) as load:
        time.sleep(2.0)
        move_alias(fleet.store, fleet.next_good)
        wait_until(lambda: model_info(service.url)["version"] == fleet.next_good, timeout=30, what="the switch")
        time.sleep(2.0)
    report = load.report
    assert report is not None
    _no_failures(report)
    assert all(o.version for o in report.answered()), "an answer did not name its model version"
    _switched_once(report, fleet.good, fleet.next_good)
    answered = {o.answered_id: o.version for o in report.answered()}
    rows = wait_until(
        lambda: (
            (r := [x for x in read_log(service.log_dir) if x["request_id"] in answered])
            and len(r) == len(answered)
            and r
        ),
        timeout=15,
        what="every answered request in the prediction log",
    )
    assert {r["request_id"]: r["model_version"] for r in rows} == answered, "the log names another version"


def test_tampered_version_is_refused_and_the_old_one_keeps_serving(serving_good: Fleet, service: RunningApi) -> None:
    fleet = serving_good
    with _load(service, fleet) as load:
        time.sleep(1.0)
        move_alias(fleet.store, fleet.tampered)
        info = _refusal_of(service, fleet.tampered)
        time.sleep(1.5)
    assert load.report is not None
    _no_failures(load.report)
    assert load.report.version_runs() == [fleet.good]
    assert info["version"] == fleet.good
    assert info["last_reload"]["outcome"] == "refused", info["last_reload"]
    assert "hash mismatch" in info["last_reload"]["error"], info["last_reload"]
    assert httpx.get(f"{service.url}/ready").status_code == 200


def test_version_that_fails_to_load_is_refused_and_the_old_one_keeps_serving(
    serving_good: Fleet, service: RunningApi
) -> None:
    fleet = serving_good
    with _load(service, fleet) as load:
        time.sleep(1.0)
        move_alias(fleet.store, fleet.broken)
        info = _refusal_of(service, fleet.broken)
        time.sleep(1.5)
    assert load.report is not None
    _no_failures(load.report)
    assert load.report.version_runs() == [fleet.good]
    assert info["version"] == fleet.good
    assert info["last_reload"]["outcome"] == "failed", info["last_reload"]
    assert info["last_reload"]["error"], "the failure names its cause"
    assert httpx.get(f"{service.url}/ready").status_code == 200


def _loads_so_far(service: RunningApi) -> float:
    text = httpx.get(f"{service.url}/metrics").text
    match = re.search(r'^credit_risk_model_reloads_total\{outcome="loaded"\} ([0-9.e+]+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def test_two_reloads_at_once_load_the_new_version_once(serving_good: Fleet, service: RunningApi) -> None:
    fleet = serving_good
    loaded_before = _loads_so_far(service)
    swaps_before = service.process.log_text().count(f"serving credit-risk version {fleet.next_good} ")
    answers: list[httpx.Response] = []
    start = threading.Barrier(2)

    def reload() -> None:
        start.wait()
        answers.append(httpx.post(f"{service.url}/v1/admin/reload", headers=service.admin_headers(), timeout=60))

    with _load(service, fleet) as load:
        move_alias(fleet.store, fleet.next_good)
        threads = [threading.Thread(target=reload) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        time.sleep(1.0)
    assert load.report is not None
    _no_failures(load.report)
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert {a.json()["served_version"] for a in answers} == {fleet.next_good}
    assert _loads_so_far(service) == loaded_before + 1, "the version was loaded more than once"
    swaps = service.process.log_text().count(f"serving credit-risk version {fleet.next_good} ")
    assert swaps == swaps_before + 1, "the service swapped models more than once"
    _switched_once(load.report, fleet.good, fleet.next_good)
