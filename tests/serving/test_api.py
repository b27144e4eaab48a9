"""Every endpoint of the scoring service, in-process, against the session's real registered model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import schemathesis
from fastapi.testclient import TestClient

from credit_risk.config import PROJECT_ROOT
from credit_risk.data import load_applicants
from serving.schemas import BatchResponse, ModelInfo, PredictionResponse, Readiness, RegistryOut
from tests.conftest import TrainedModel
from tests.serving.conftest import app_client

pytestmark = pytest.mark.code


def _records(trained: TrainedModel, rows: int) -> list[dict[str, Any]]:
    """Real applicants from the committed data, as the API takes them (codes and Python ints)."""
    config = trained.store.config
    frame, _ = load_applicants(config.resolve(config.training.data.path), config.features)
    return [
        {key: (int(value) if isinstance(value, np.integer) else value) for key, value in row.items()}
        for row in frame.head(rows).to_dict(orient="records")
    ]


def test_health_answers_ok(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


def test_ready_names_the_served_version(client: TestClient, trained: TrainedModel) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert Readiness.model_validate(response.json()).version == str(trained.version.version)


def test_predict_answers_the_contract(client: TestClient, applicant: dict, trained: TrainedModel) -> None:
    response = client.post("/v1/predict", json=applicant)
    assert response.status_code == 200, response.text
    body = PredictionResponse.model_validate(response.json())
    assert body.model.version == str(trained.version.version)
    assert (body.model.name, body.model.alias) == ("credit-risk", "production")
    assert body.decision_policy_version == trained.store.config.model.decision.policy_version
    assert response.headers["x-request-id"] == body.request_id


def test_predict_takes_a_valid_request_id_header(client: TestClient, applicant: dict) -> None:
    response = client.post("/v1/predict", json=applicant, headers={"X-Request-ID": "loan-42:a"})
    assert response.json()["request_id"] == "loan-42:a"


def test_predict_replaces_an_invalid_request_id_header(client: TestClient, applicant: dict) -> None:
    response = client.post("/v1/predict", json=applicant, headers={"X-Request-ID": "bad id/../" + "x" * 300})
    assert response.status_code == 200
    assert len(response.json()["request_id"]) == 32


def test_new_request_ids_are_random_uuid4s_and_a_forked_worker_draws_its_own() -> None:
    """Ids come from a pool of the OS's random bytes; a fork must not hand the parent's pool on."""
    import os
    import uuid

    from serving.api.deps import request_id_from

    ids = [request_id_from(None) for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(hex=i).version == 4 and uuid.UUID(hex=i).hex == i for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then exit without running the rest of the session
        os.write(write, request_id_from(None).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    assert child != request_id_from(None) and child not in ids


def test_predictions_agree_with_mlflow_pyfunc(client: TestClient, trained: TrainedModel) -> None:
    records = _records(trained, 40)
    response = client.post("/v1/predict/batch", json={"applicants": records})
    assert response.status_code == 200, response.text
    served = np.array([r["probability_of_default"] for r in response.json()["results"]])
    pyfunc = mlflow.pyfunc.load_model(f"models:/credit-risk/{trained.version.version}")
    expected = pyfunc.predict(pd.DataFrame(records)[trained.store.config.features.input_names])
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-6)


def test_single_predictions_agree_with_mlflow_pyfunc(client: TestClient, trained: TrainedModel) -> None:
    # single requests take the numpy tree runtime (serving.tree_runtime), batches over 32 rows XGBoost's
    records = _records(trained, 40)
    served = np.array([client.post("/v1/predict", json=r).json()["probability_of_default"] for r in records])
    pyfunc = mlflow.pyfunc.load_model(f"models:/credit-risk/{trained.version.version}")
    expected = pyfunc.predict(pd.DataFrame(records)[trained.store.config.features.input_names])
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-6)


def test_single_and_batch_give_the_same_answer(client: TestClient, trained: TrainedModel) -> None:
    records = _records(trained, 5)
    batch = client.post("/v1/predict/batch", json={"applicants": records}).json()["results"]
    for record, from_batch in zip(records, batch, strict=True):
        single = client.post("/v1/predict", json=record).json()
        assert single["probability_of_default"] == pytest.approx(from_batch["probability_of_default"], abs=1e-6)
        for key in ("score", "risk_band", "decision"):
            assert single[key] == from_batch[key], key
        assert [r["code"] for r in single["reasons"]] == [r["code"] for r in from_batch["reasons"]]
        for mine, theirs in zip(single["reasons"], from_batch["reasons"], strict=True):
            assert mine["contribution"] == pytest.approx(theirs["contribution"], abs=1e-5)


def test_reasons_are_at_most_four_positive_and_sorted(client: TestClient, trained: TrainedModel) -> None:
    schema = trained.store.config.features
    codes = {f.reason_code: f for f in schema.inputs}
    results = client.post("/v1/predict/batch", json={"applicants": _records(trained, 30)}).json()["results"]
    assert any(r["reasons"] for r in results)
    for result in results:
        reasons = result["reasons"]
        contributions = [r["contribution"] for r in reasons]
        assert len(reasons) <= 4
        assert all(c > 0 for c in contributions)
        assert contributions == sorted(contributions, reverse=True)
        for reason in reasons:
            assert codes[reason["code"]].name == reason["field"], (
                "a reason names a model input, never a protected field"
            )


def test_single_requests_use_the_verified_numpy_runtime(client: TestClient) -> None:
    assert client.get("/v1/model").json()["runtime"] == "numpy"


def test_reasons_agree_with_xgboost_treeshap(client: TestClient, trained: TrainedModel) -> None:
    # the numpy TreeSHAP (single requests) against XGBoost's pred_contribs on the same version
    from credit_risk.decision import DecisionEngine

    served = client.app.state.runtime.holder.served
    xgboost_engine = DecisionEngine(served.model, trained.store.config.model)  # the plain XGBoost model
    for record in _records(trained, 60):
        api = client.post("/v1/predict", json=record).json()["reasons"]
        reference = xgboost_engine.assess([record])[0].reasons
        assert [r["code"] for r in api] == [r.code for r in reference]
        for mine, theirs in zip(api, reference, strict=True):
            assert mine["contribution"] == pytest.approx(theirs.contribution, abs=1e-5)


def test_reasons_can_be_switched_off(client: TestClient, applicant: dict) -> None:
    with_reasons = client.post("/v1/predict", json=applicant).json()
    without = client.post("/v1/predict?reasons=false", json=applicant).json()
    assert without["reasons"] == [] and with_reasons["reasons"]
    assert without["probability_of_default"] == with_reasons["probability_of_default"]


def test_protected_fields_are_accepted_but_never_change_the_answer(client: TestClient, applicant: dict) -> None:
    without = {k: v for k, v in applicant.items() if k not in ("age_in_years", "foreign_worker")}
    older = {**applicant, "age_in_years": 70, "foreign_worker": "no"}
    first = client.post("/v1/predict", json=without).json()
    second = client.post("/v1/predict", json=older).json()
    assert first["probability_of_default"] == second["probability_of_default"]


def test_batch_answers_in_order_with_one_result_per_applicant(client: TestClient, trained: TrainedModel) -> None:
    records = _records(trained, 12)
    response = client.post("/v1/predict/batch", json={"applicants": records})
    body = BatchResponse.model_validate(response.json())
    assert len(body.results) == 12
    singles = [client.post("/v1/predict", json=r).json()["probability_of_default"] for r in records]
    assert [r.probability_of_default for r in body.results] == pytest.approx(singles, abs=1e-6)
    assert len({r.request_id for r in body.results}) == 12


def test_model_reports_version_schema_policy_and_last_reload(client: TestClient, trained: TrainedModel) -> None:
    body = ModelInfo.model_validate(client.get("/v1/model").json())
    assert body.version == str(trained.version.version)
    assert body.run_id == trained.version.run_id
    assert body.artifact_sha256 == trained.version.tags["artifact_sha256"]
    assert body.metrics["roc_auc"] == pytest.approx(float(trained.version.tags["metric.roc_auc"]))
    assert body.feature_schema == trained.store.config.features.model_dump(mode="json")
    assert body.decision["approve_below"] == trained.store.config.model.decision.approve_below
    assert body.last_reload is not None and (body.last_reload.outcome, body.last_reload.version) == (
        "loaded",
        body.version,
    )


def test_registry_lists_versions_aliases_and_history(client: TestClient, trained: TrainedModel) -> None:
    body = RegistryOut.model_validate(client.get("/v1/registry").json())
    version = str(trained.version.version)
    assert body.aliases["production"] == version
    assert [v.version for v in body.versions] == [version]
    assert "production" in body.versions[0].aliases
    assert body.history[-1].to_version == version and body.history[-1].action == "promote"


def test_metrics_count_requests_results_and_the_served_version(client: TestClient, applicant: dict) -> None:
    client.post("/v1/predict", json=applicant)
    text = client.get("/metrics").text
    assert 'credit_risk_http_requests_total{route="/v1/predict",status="200"}' in text
    assert "credit_risk_http_request_duration_seconds_bucket" in text
    assert "credit_risk_predictions_total{" in text
    assert 'credit_risk_served_model_info{name="credit-risk",version="1"} 1.0' in text
    assert "credit_risk_ready 1.0" in text


def test_unknown_route_is_404_json(client: TestClient) -> None:
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404 and response.json() == {"detail": "Not Found"}


def test_openapi_document_is_valid_and_has_examples(client: TestClient, trained: TrainedModel) -> None:
    document = client.get("/openapi.json").json()
    schemathesis.openapi.from_dict(document).validate()
    applicant_schema = document["components"]["schemas"]["Applicant"]
    assert applicant_schema["examples"][0] == trained.store.config.features.example_record()
    assert set(applicant_schema["required"]) == set(trained.store.config.features.input_names)
    assert applicant_schema["additionalProperties"] is False
    duration = applicant_schema["properties"]["duration_in_month"]
    assert (duration["type"], duration["minimum"], duration["maximum"]) == ("integer", 1, 120)
    assert document["components"]["schemas"]["BatchRequest"]["properties"]["applicants"]["maxItems"] == 50
    predict = document["paths"]["/v1/predict"]["post"]
    assert {"200", "400", "413", "415", "422", "503"} <= set(predict["responses"])


def test_cors_allows_only_the_configured_origin(client: TestClient, trained: TrainedModel) -> None:
    allowed = trained.store.config.model.serving.cors_origins[0]
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    good = client.options("/v1/predict", headers={"Origin": allowed, **preflight})
    bad = client.options("/v1/predict", headers={"Origin": "https://evil.example", **preflight})
    assert good.headers.get("access-control-allow-origin") == allowed
    assert "access-control-allow-origin" not in bad.headers


def test_app_module_has_no_side_effects_at_import() -> None:
    import subprocess
    import sys

    code = (
        "import os, serving.app as m; "
        "assert getattr(m.app.state, 'runtime', None) is None; "
        "assert not os.path.exists('does-not-exist-config')"
    )
    env = {"CREDIT_RISK_CONFIG_DIR": "does-not-exist-config", "PATH": ""}
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_openapi_leaves_out_admin_routes_when_they_are_off(trained: TrainedModel, tmp_path: Path) -> None:
    """No admin token: the admin routes are 404, so the document must not declare them."""
    with app_client(trained.store, tmp_path / "off", admin_token=None) as off:
        paths = off.get("/openapi.json").json()["paths"]
        assert not [p for p in paths if p.startswith("/v1/admin")], sorted(paths)
        assert off.post("/v1/admin/reload").status_code == 404
    with app_client(trained.store, tmp_path / "on") as on:
        paths = on.get("/openapi.json").json()["paths"]
        assert {"/v1/admin/reload", "/v1/admin/promote", "/v1/admin/rollback"} <= set(paths)


def test_openapi_leaves_out_the_outcomes_load_without_an_admin_token(trained: TrainedModel, tmp_path: Path) -> None:
    """POST /v1/outcomes needs the admin role: with no admin token it answers 404, so it is not documented."""
    with app_client(trained.store, tmp_path / "off", admin_token=None) as off:
        paths = off.get("/openapi.json").json()["paths"]
        assert "/v1/outcomes" not in paths, paths.get("/v1/outcomes")
        assert off.post("/v1/outcomes", json={"outcomes": []}).status_code == 404
    with app_client(trained.store, tmp_path / "on") as on:
        operation = on.get("/openapi.json").json()["paths"]["/v1/outcomes"]["post"]
        assert operation["x-required-role"] == "admin"
