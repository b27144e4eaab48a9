"""Replay across an alias move and a policy change, a tampered record, a changed policy under an old version.

One real store: version 1 (XGBoost) decides under policy A; then a logistic version 2 is
promoted and the policy changes (new thresholds under a new version string) and more is
decided. Replayed afterwards, every decision must come out identical, each re-made by the
version and policy that made it; an altered logged row must not.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from credit_risk import policy
from credit_risk.config import PROJECT_ROOT, ProjectConfig, load_project_config
from pipelines import replay as replay_job
from tests.conftest import FAST_TRAINING, Store, make_store, write_config_dir
from tests.support.audit import ADMIN, AUDITOR, audit_client, bearer, wait_logged

pytestmark = [pytest.mark.model, pytest.mark.timeout(600)]

POLICY_B = {
    "policy_version": "2026-12-01.1",
    "approve_below": 0.25,
    "decline_at_or_above": 0.6,
    "max_reasons": 3,
}


@dataclass
class Scenario:
    store: Store
    config_b: ProjectConfig
    log_dir: Path
    ids_a: list[str]
    ids_b: list[str]


def applicants(config: ProjectConfig, n: int) -> list[dict[str, Any]]:
    """Varied valid applicants: the example record with durations and amounts spread out."""
    base = config.features.example_record()
    return [{**base, "duration_in_month": 6 + 3 * i, "credit_amount": 800 + 900 * i} for i in range(n)]


def score(client: Any, config: ProjectConfig, prefix: str, n: int) -> list[str]:
    ids = []
    for i, applicant in enumerate(applicants(config, n)):
        request_id = f"{prefix}-{i}"
        response = client.post("/v1/predict", json=applicant, headers={"X-Request-ID": request_id})
        assert response.status_code == 200, response.text
        ids.append(request_id)
    response = client.post(
        "/v1/predict?reasons=false", json=applicants(config, 1)[0], headers={"X-Request-ID": f"{prefix}-bare"}
    )
    assert response.status_code == 200
    return [*ids, f"{prefix}-bare"]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    from credit_risk.lifecycle import promote
    from pipelines.train import train

    tmp = tmp_path_factory.mktemp("replay")
    store = make_store(tmp)
    log_dir = tmp / "log" / "predictions"
    train(store.config, store.settings)
    promote(store.config, store.settings, reason="first")
    with audit_client(store, log_dir) as client:
        ids_a = score(client, store.config, "a", 8)
        wait_logged(client, ids_a[-1])
    # a different model (logistic only), moved to production, and a new policy
    logistic = {**FAST_TRAINING, "candidates": {"logistic_regression": [{"C": 0.3}]}}
    config_b_dir = write_config_dir(tmp / "config-b", training=logistic, model={"decision": POLICY_B})
    config_b = load_project_config(config_b_dir, root=PROJECT_ROOT)
    train(config_b, store.settings)
    promote(config_b, store.settings, reason="alias move for the replay test", force=True)
    with audit_client(store, log_dir, config=config_b) as client:
        ids_b = score(client, config_b, "b", 8)
        logged = wait_logged(client, ids_b[-1])
        assert logged["model"]["version"] == "2" and logged["decision_policy_version"] == POLICY_B["policy_version"]
    yield Scenario(store=store, config_b=config_b, log_dir=log_dir, ids_a=ids_a, ids_b=ids_b)


def test_replay_after_an_alias_move_and_a_policy_change_is_identical(scenario: Scenario) -> None:
    summary = replay_job.replay_window(scenario.config_b, scenario.store.settings, log_dir=scenario.log_dir)
    assert summary["records"] == len(scenario.ids_a) + len(scenario.ids_b)
    assert summary["identical"] == summary["records"], summary["differences"]
    assert summary["exit_code"] == 0
    versions = {key.split("/")[0] for key in summary["by_version"]}
    policies = {key.split("/")[1] for key in summary["by_version"]}
    assert versions == {"1", "2"}
    assert policies == {scenario.store.config.model.decision.policy_version, POLICY_B["policy_version"]}


def test_the_replay_job_logs_its_summary_to_mlflow(scenario: Scenario) -> None:
    summary = replay_job.replay_window(scenario.config_b, scenario.store.settings, log_dir=scenario.log_dir)
    run = scenario.store.client.get_run(summary["run_id"])
    assert run.data.metrics["identical"] == summary["identical"]
    assert run.data.metrics["different"] == 0
    artifacts = [a.path for a in scenario.store.client.list_artifacts(summary["run_id"], "replay")]
    assert artifacts == ["replay/replay_summary.json"]


def test_an_old_decision_replayed_through_the_api_uses_the_version_and_policy_that_made_it(
    scenario: Scenario, tmp_path: Path
) -> None:
    with audit_client(scenario.store, scenario.log_dir, config=scenario.config_b) as client:
        assert client.get("/v1/model").json()["version"] == "2"
        response = client.post(f"/v1/decisions/{scenario.ids_a[0]}/replay", headers=bearer(AUDITOR))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "identical", body
    assert body["model_version"] == "1"
    assert body["policy_version"] == scenario.store.config.model.decision.policy_version


def test_a_tampered_logged_record_is_detected(scenario: Scenario, tmp_path: Path) -> None:
    copy = tmp_path / "predictions"
    shutil.copytree(scenario.log_dir, copy)
    target = next(
        path for path in sorted(copy.rglob("*.parquet")) if "a-3" in pq.read_table(path)["request_id"].to_pylist()
    )
    table = pq.read_table(target)
    mask = pc.equal(table["request_id"], "a-3")
    column = table.schema.get_field_index("probability")
    altered = pc.if_else(mask, pc.multiply(table["probability"], 0.5), table["probability"])
    pq.write_table(table.set_column(column, "probability", altered), target)
    summary = replay_job.replay_window(scenario.config_b, scenario.store.settings, log_dir=copy)
    assert summary["exit_code"] == 2
    assert summary["different"] == 1
    (entry,) = summary["differences"]
    assert entry["request_id"] == "a-3"
    assert "probability" in entry["differences"]


def test_a_tampered_input_is_detected(scenario: Scenario, tmp_path: Path) -> None:
    copy = tmp_path / "predictions"
    shutil.copytree(scenario.log_dir, copy)
    for path in sorted(copy.rglob("*.parquet")):
        table = pq.read_table(path)
        if "b-2" in table["request_id"].to_pylist():
            mask = pc.equal(table["request_id"], "b-2")
            column = table.schema.get_field_index("duration_in_month")
            altered = pc.if_else(mask, pa.scalar(72, pa.int64()), table["duration_in_month"])
            pq.write_table(table.set_column(column, "duration_in_month", altered), path)
    summary = replay_job.replay_window(scenario.config_b, scenario.store.settings, log_dir=copy)
    assert [entry["request_id"] for entry in summary["differences"]] == ["b-2"]


def test_the_replay_command_exits_non_zero_on_a_difference(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "predictions"
    shutil.copytree(scenario.log_dir, copy)
    path = sorted(copy.rglob("*.parquet"))[0]
    table = pq.read_table(path)
    column = table.schema.get_field_index("score")
    pq.write_table(table.set_column(column, "score", pc.add(table["score"], 1)), path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", scenario.store.uri)
    code = replay_job.main(["--config-dir", str(scenario.config_b.config_dir), "--log-dir", str(copy)])
    assert code == 2
    assert replay_job.main(["--config-dir", str(scenario.config_b.config_dir), "--log-dir", str(scenario.log_dir)]) == 0


def test_a_changed_policy_under_a_recorded_version_is_refused_at_start(scenario: Scenario, tmp_path: Path) -> None:
    changed = {**POLICY_B, "approve_below": 0.2}
    config_dir = write_config_dir(tmp_path / "config", training=FAST_TRAINING, model={"decision": changed})
    config = load_project_config(config_dir, root=PROJECT_ROOT)
    with pytest.raises(policy.PolicyConflictError, match=re.escape("approve_below: 0.25 -> 0.2")):
        policy.record_policy(scenario.store.client, config.model)
    with (
        pytest.raises(policy.PolicyConflictError, match=re.escape(POLICY_B["policy_version"])),
        audit_client(scenario.store, tmp_path / "log", config=config),
    ):
        pass


def test_a_recorded_policy_reads_back_as_it_was(scenario: Scenario) -> None:
    experiment = scenario.config_b.model.audit.policy_experiment
    read = policy.load_policy(scenario.store.client, experiment, POLICY_B["policy_version"])
    assert read == policy.PolicySnapshot.of(scenario.config_b.model)
    with pytest.raises(policy.PolicyError, match="never recorded"):
        policy.load_policy(scenario.store.client, experiment, "1999-01-01.1")


def test_an_alias_move_through_the_api_records_the_admin_tokens_name(scenario: Scenario, tmp_path: Path) -> None:
    """Last in the module: it moves the alias back to version 1."""
    from credit_risk.lifecycle import alias_history

    with audit_client(scenario.store, scenario.log_dir, config=scenario.config_b) as client:
        denied = client.post("/v1/admin/rollback", json={"reason": "auditor tries"}, headers=bearer(AUDITOR))
        response = client.post("/v1/admin/rollback", json={"reason": "audit test"}, headers=bearer(ADMIN))
    assert denied.status_code == 403
    assert response.status_code == 200, response.text
    last = alias_history(scenario.store.client, scenario.store.config.model.registry.model_name)[-1]
    assert last.actor == "ops-alice (admin)"
    assert last.to_version == "1"
