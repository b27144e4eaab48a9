"""The loop, end to end, against the real app (TestClient over create_app) and a real MLflow store.

A champion trained on the German Credit file serves simulated applicants over
~4.5 months of simulated dates; outcomes follow the model's own probabilities
until the shift, then a known model it does not follow. The outcomes come back
through POST /v1/outcomes; the performance job must see the realized AUC fall
and alert; a challenger retrained from production must beat the champion on
the recent out-of-time window and pass the promotion gates.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from credit_risk.config import PROJECT_ROOT
from credit_risk.data import load_applicants
from credit_risk.outcomes.paths import resolve_outcomes_dir
from credit_risk.outcomes.table import OutcomeTable
from pipelines.outcome_simulator import Plan, Simulation, simulate
from pipelines.performance.job import EXIT_ALERT, performance
from pipelines.promote import promote
from pipelines.train import train
from tests.conftest import Store, make_store
from tests.serving.conftest import ADMIN_TOKEN, app_client

pytestmark = pytest.mark.integration

MATURITY = 30


@dataclass
class Loop:
    store: Store
    log_dir: Path
    plan: Plan
    simulation: Simulation
    champion: str


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Loop:
    tmp = tmp_path_factory.mktemp("loop")
    store = make_store(
        tmp,
        training={
            "data": {"path": "data/german_credit.csv", "holdout_fraction": 0.2, "production": {"min_outcomes": 300}}
        },
        model={
            "outcomes": {"maturity_days": MATURITY, "max_batch_size": 500},
            "performance": {"min_auc": 0.60, "max_auc_drop": 0.10, "min_outcomes": 150},
        },
    )
    champion = train(store.config, store.settings)
    promote(store.config, store.settings, reason="champion for the loop")
    log_dir = tmp / "logs" / "predictions"
    store.settings = store.settings.model_copy(update={"log_dir": log_dir})
    today = datetime.now(UTC).date()
    start = today - timedelta(days=170)  # inside the log's 180-day retention
    plan = Plan(start=start, days=135, shift_on=start + timedelta(days=45), per_day=25)
    source, _ = load_applicants(store.config.resolve(store.config.training.data.path), store.config.features)
    with app_client(store, log_dir) as client:
        runtime = client.app.state.runtime

        def set_clock(when: datetime) -> None:
            runtime.clock = lambda: when

        simulation = simulate(
            client,
            source,
            store.config.features,
            plan,
            token=ADMIN_TOKEN,
            set_clock=set_clock,
            max_batch=200,
            max_outcomes=500,
        )
    return Loop(store, log_dir, plan, simulation, str(champion.version))


def _run(loop: Loop, start: date, end: date):
    return performance(loop.store.config, loop.store.settings, start=start, end=end, maturity_days=MATURITY)


def test_every_booked_loan_got_its_outcome_stored(loop: Loop) -> None:
    stored = sum(answer["added"] for answer in loop.simulation.loads)
    assert stored == len(loop.simulation.outcomes) > 1000
    table = OutcomeTable(resolve_outcomes_dir(loop.store.config, loop.log_dir))
    assert table.current().num_rows == stored


def test_realized_auc_falls_after_the_shift_and_the_run_alerts(loop: Loop) -> None:
    before = _run(loop, loop.plan.start, loop.plan.shift_on - timedelta(days=1))
    after = _run(loop, loop.plan.shift_on, loop.plan.start + timedelta(days=loop.plan.days))
    auc_before = before.versions[loop.champion].auc
    auc_after = after.versions[loop.champion].auc
    assert auc_before - auc_after > 0.15, (auc_before, auc_after)
    assert not [a for a in before.alerts if a.subject in ("auc", "auc_drop")], before.alerts
    assert after.exit_code == EXIT_ALERT
    assert {"auc", "auc_drop"} <= {a.subject for a in after.alerts}, after.alerts


def test_the_summary_shows_coverage_by_decision(loop: Loop) -> None:
    summary = _run(loop, loop.plan.start, loop.plan.start + timedelta(days=loop.plan.days))
    coverage = summary.versions[loop.champion].coverage_by_decision
    assert coverage["decline"].with_outcome == 0, "declined applicants never get a loan"
    assert coverage["approve"].share_with_outcome == 1.0
    assert 0 < coverage["review"].share_with_outcome < 1
    written = json.loads((loop.log_dir.parent / "performance" / "latest.json").read_text())
    assert written["versions"][loop.champion]["with_outcome"] == summary.versions[loop.champion].with_outcome


def test_a_challenger_retrained_from_production_beats_the_champion_and_passes_the_gates(loop: Loop) -> None:
    store = loop.store
    challenger = train(store.config, store.settings, source="production")
    assert challenger.tags["data_source"] == "production"
    run = store.client.get_run(challenger.run_id)
    lineage = json.loads(
        Path(store.client.download_artifacts(challenger.run_id, "lineage.json", str(loop.log_dir.parent))).read_text()
    )
    table = OutcomeTable(resolve_outcomes_dir(store.config, loop.log_dir))
    assert lineage["outcomes_sha256"] == table.digest() == run.data.params["outcomes_sha256"]
    assert lineage["decisions_by_version"] == {loop.champion: lineage["counts"]["with_outcome"]}
    assert lineage["counts"]["holdout_rows"] > 100
    assert date.fromisoformat(lineage["holdout_from"][:10]) > loop.plan.shift_on, "the holdout is the recent period"
    event = promote(store.config, store.settings, reason="retrained on production outcomes").event
    assert event is not None
    assert event.to_version == str(challenger.version)
    assert event.figures["challenger_auc"] > event.figures["champion_auc"] + 0.05, event.figures


def test_the_performance_command_exits_2_and_logs_its_plots_to_mlflow(loop: Loop) -> None:
    store = loop.store
    done = _performance_command(loop, "--start", loop.plan.shift_on.isoformat(), "--maturity-days", str(MATURITY))
    assert done.returncode == EXIT_ALERT, done.stderr[-3000:]
    summary = json.loads((loop.log_dir.parent / "performance" / "latest.json").read_text())
    run = store.client.get_run(summary["mlflow_run_id"])
    assert run.data.metrics[f"v{loop.champion}_auc"] == pytest.approx(summary["versions"][loop.champion]["auc"])
    artifacts = {a.path for a in store.client.list_artifacts(run.info.run_id, "performance_report")}
    assert {
        "performance_report/roc_curve.png",
        "performance_report/reliability_diagram.png",
        "performance_report/bad_rate_by_band.png",
        "performance_report/summary.json",
        "performance_report/performance_report.md",
    } <= artifacts


def _performance_command(loop: Loop, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": loop.store.uri,
        "CREDIT_RISK_CONFIG_DIR": str(loop.store.config.config_dir),
        "CREDIT_RISK_LOG_DIR": str(loop.log_dir),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "pipelines.performance", *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_under_mlflow_run_an_alert_is_printed_as_a_finding_and_exits_0(loop: Loop) -> None:
    start = loop.plan.shift_on.isoformat()
    done = _performance_command(loop, "--start", start, "--maturity-days", str(MATURITY), "--alert-exit-code", "0")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "The performance report finished and raised" in done.stdout, done.stdout
    assert "Traceback" not in done.stderr


def test_no_matured_decision_says_when_the_first_matures_and_how_to_see_figures_now(loop: Loop) -> None:
    done = _performance_command(loop, "--maturity-days", "3650")
    assert done.returncode == 0, done.stderr[-3000:]
    first = loop.plan.start
    matures = first + timedelta(days=3650)
    assert f"the first one (made on {first.isoformat()}) matures on {matures.isoformat()}" in done.stdout, done.stdout
    assert "as_of" in done.stdout and "maturity_days=0" in done.stdout


def test_a_log_holding_duplicates_counts_each_decision_once_in_the_performance_figures(
    loop: Loop, tmp_path: Path
) -> None:
    # the log and its outcomes copied, every log file twice (as an older release could leave it)
    shutil.copytree(loop.log_dir.parent, tmp_path / "logs")
    log_dir = tmp_path / "logs" / loop.log_dir.name
    for path in list(log_dir.glob("date=*/part-*.parquet")):
        shutil.copy(path, path.with_name(path.name.replace("part-", "part-copy_", 1)))
    end = loop.plan.start + timedelta(days=loop.plan.days)
    clean = _run(loop, loop.plan.start, end)
    doubled = performance(
        loop.store.config, loop.store.settings, start=loop.plan.start, end=end, maturity_days=MATURITY, log_dir=log_dir
    )
    assert clean.duplicates_dropped == 0
    assert doubled.duplicates_dropped == len(loop.simulation.decisions) > 0, "every logged decision was there twice"
    ours, theirs = doubled.versions[loop.champion], clean.versions[loop.champion]
    assert (ours.decisions, ours.with_outcome, ours.auc) == (theirs.decisions, theirs.with_outcome, theirs.auc)
