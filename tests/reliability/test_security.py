"""Security over a real process started as a deployment would start it (no ``--host``, no admin token).

It binds to loopback only; the admin routes do not exist; CORS answers only the
configured UI origin; no request can make it load a model from a path, URI or
version of its choosing; and the prediction log's hashed fields hold keyed
hashes, never the clear value. (Token checks with a token configured are in
tests/serving/test_admin.py.)
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from credit_risk.config import DEFAULT_CONFIG_DIR, PROJECT_ROOT, load_project_config
from credit_risk.decision_log.privacy import keyed_hash
from credit_risk.registry import UNSIGNED_WARNING
from tests.conftest import write_config_dir
from tests.reliability.conftest import Fleet, artifact_dir, read_log, serving_section, wait_until
from tests.support.processes import RunningProcess, free_port, running_process

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]  # a hang guard (set-up trains models)

HASHED = ("personal_status_and_sex", "age_in_years", "foreign_worker")
UI_ORIGINS = tuple(serving_section()["cors_origins"])


@dataclass(frozen=True)
class Deployed:
    url: str
    port: int
    process: RunningProcess
    log_dir: Path
    hash_key: str


def _prediction_log_section(**changes: Any) -> dict[str, Any]:
    section = load_project_config(DEFAULT_CONFIG_DIR).model.prediction_log.model_dump(mode="json")
    return {**section, **changes}


@pytest.fixture(scope="module")
def deployed(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """``python -m serving.app``, as `make serve` starts it: host from the committed config, a free port."""
    tmp = tmp_path_factory.mktemp("deployed")
    port = free_port()
    config_dir = write_config_dir(
        tmp / "config",
        model={
            "prediction_log": _prediction_log_section(hash_fields=list(HASHED)),
            "serving": {**serving_section(), "port": port},
        },
    )
    key = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "CREDIT_RISK_ADMIN_TOKEN"}
    env |= {
        "MLFLOW_TRACKING_URI": fleet.store.uri,
        "CREDIT_RISK_CONFIG_DIR": str(config_dir),
        "CREDIT_RISK_LOG_DIR": str(tmp / "log"),
        "CREDIT_RISK_LOG_HASH_KEY": key,
    }
    args = [sys.executable, "-m", "serving.app"]
    url = f"http://127.0.0.1:{port}"
    with running_process(
        args, env=env, cwd=PROJECT_ROOT, ready_url=f"{url}/ready", timeout=90, log_path=tmp / "api.log"
    ) as process:
        yield Deployed(url=url, port=port, process=process, log_dir=tmp / "log", hash_key=key)


@pytest.fixture
def http(deployed: Deployed) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=deployed.url, timeout=30, trust_env=False) as client:
        yield client


# ------------------------------------------------------------------ bind address


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket in LISTEN state on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_service_binds_to_loopback_only_by_default(deployed: Deployed) -> None:
    addresses = _listening_addresses(deployed.port)
    assert addresses == {"0100007F"}, f"listening on {addresses} (0100007F is 127.0.0.1)"


def test_every_launch_command_takes_the_host_from_the_config() -> None:
    assert serving_section()["host"] == "127.0.0.1", "the committed config binds to loopback"
    sources = {path: path.read_text() for path in [PROJECT_ROOT / "Makefile", *PROJECT_ROOT.glob("scripts/*.sh")]}
    launches = [
        (path.name, line.strip())
        for path, text in sources.items()
        for line in text.splitlines()
        if "serving.app" in line and not line.lstrip().startswith("#")
    ]
    assert launches, "no API launch found"
    for name, line in launches:
        assert "-m serving.app" in line and "--host" not in line, f"{name}: {line}"


# ------------------------------------------------------------------ Host allow-list (DNS rebinding)


REBOUND = ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example:{port}", "localhost:1"]


@pytest.mark.parametrize("host", REBOUND)
def test_a_request_naming_another_host_is_refused_on_the_fast_path_and_the_framework(
    http: httpx.Client, deployed: Deployed, example: dict[str, Any], host: str
) -> None:
    """A page whose name was re-bound to 127.0.0.1 sends its own name in Host: 400 with the service's error
    body, for POST /v1/predict's common case (answered in front of FastAPI) as for every other route."""
    headers = {"Host": host.format(port=deployed.port)}
    for response in (http.post("/v1/predict", json=example, headers=headers), http.get("/v1/model", headers=headers)):
        assert response.status_code == 400, (host, response.status_code, response.text)
        assert "serving.allowed_hosts" in response.json()["detail"]
        assert (response.json()["field"], response.json()["rule"]) == ("host", "allowed_hosts")


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "127.0.0.1"])
def test_the_service_answers_its_own_loopback_names(
    http: httpx.Client, deployed: Deployed, example: dict[str, Any], host: str
) -> None:
    response = http.post("/v1/predict", json=example, headers={"Host": host.format(port=deployed.port)})
    assert response.status_code == 200, response.text


# ------------------------------------------------------------------ /docs without a CDN


def test_the_docs_page_loads_nothing_from_another_host(http: httpx.Client) -> None:
    page = http.get("/docs")
    assert page.status_code == 200
    assert not re.findall(r"(?:https?:)?//[^\s\"'<>]+", page.text), "the page names another host"
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        assert http.get(asset).status_code == 200, asset
    assert http.get("/redoc").status_code == 404, "FastAPI's ReDoc page loads from a CDN: switched off"


# ------------------------------------------------------------------ signing key


def test_the_service_warns_at_start_that_no_signing_key_is_set(deployed: Deployed) -> None:
    assert UNSIGNED_WARNING in deployed.process.log_text()


def test_v1_model_says_the_served_version_is_not_signed_without_a_key(http: httpx.Client) -> None:
    assert http.get("/v1/model").json()["signed"] is False


# ------------------------------------------------------------------ admin off


@pytest.mark.parametrize("path", ["/v1/admin/reload", "/v1/admin/promote", "/v1/admin/rollback"])
def test_admin_routes_do_not_exist_without_a_configured_token(http: httpx.Client, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer x"}, {"Authorization": "Basic eDp4"}):
        response = http.post(path, json={"reason": "x"}, headers=headers)
        assert response.status_code == 404, (headers, response.text)


# ------------------------------------------------------------------ CORS

PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "null",
        f"{UI_ORIGINS[0]}.evil.example",
        UI_ORIGINS[0].replace("http://", "https://"),
        UI_ORIGINS[0].rsplit(":", 1)[0] + ":8502",
        UI_ORIGINS[0].upper(),
    ],
)
def test_cors_gives_no_other_origin_access(http: httpx.Client, origin: str) -> None:
    preflight = http.options("/v1/predict", headers={"Origin": origin, **PREFLIGHT})
    simple = http.get("/v1/model", headers={"Origin": origin})
    for response in (preflight, simple):
        assert "access-control-allow-origin" not in response.headers, (origin, dict(response.headers))
    assert "access-control-allow-credentials" not in simple.headers


@pytest.mark.parametrize("origin", UI_ORIGINS)
def test_cors_allows_the_configured_ui_origin_exactly(http: httpx.Client, origin: str) -> None:
    preflight = http.options("/v1/predict", headers={"Origin": origin, **PREFLIGHT})
    simple = http.get("/v1/model", headers={"Origin": origin})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert simple.headers["access-control-allow-origin"] == origin


# ------------------------------------------------------------------ no model from a request


def test_no_request_chooses_the_model(http: httpx.Client, deployed: Deployed, fleet: Fleet) -> None:
    other = artifact_dir(fleet.store, fleet.next_good)  # a real, valid model folder the service could load
    example = fleet.store.config.features.example_record()
    params = {"model_uri": str(other), "model": f"models:/credit-risk/{fleet.next_good}", "version": fleet.next_good}
    headers = {
        "X-Model-URI": other.as_uri(),
        "X-Model-Version": fleet.next_good,
        "MLflow-Model-URI": "models:/credit-risk@challenger",
    }
    response = http.post("/v1/predict", params=params, headers=headers, json=example)
    assert response.status_code == 200, response.text
    assert response.json()["model"]["version"] == fleet.good
    assert http.get("/v1/model", params=params, headers=headers).json()["version"] == fleet.good
    in_body = http.post("/v1/predict", json={**example, "model_uri": str(other)})
    assert in_body.status_code == 422 and in_body.json()["detail"][0]["type"] == "extra_forbidden"
    loads = re.findall(r"serving credit-risk version (\S+)", deployed.process.log_text())
    assert loads == [fleet.good], f"versions loaded: {loads}"


# ------------------------------------------------------------------ hashed log fields


def test_hashed_log_fields_hold_keyed_hashes_never_the_clear_value(
    http: httpx.Client, deployed: Deployed, fleet: Fleet
) -> None:
    schema = fleet.store.config.features
    sexes = [c.code for c in schema.by_name["personal_status_and_sex"].categories]
    sent: dict[str, dict[str, Any]] = {}
    for i in range(12):
        record = {
            **schema.example_record(),
            "personal_status_and_sex": sexes[i % len(sexes)],
            "age_in_years": 20 + i,
            "foreign_worker": ("yes", "no")[i % 2],
        }
        response = http.post("/v1/predict", json=record)
        assert response.status_code == 200, response.text
        sent[response.json()["request_id"]] = record
    rows = wait_until(  # the log flushes every second
        lambda: (
            (found := {r["request_id"]: r for r in read_log(deployed.log_dir)}) and set(sent) <= set(found) and found
        ),
        timeout=30,
        what="the requests in the prediction log",
    )
    key = deployed.hash_key.encode()
    for request_id, record in sent.items():
        for name in HASHED:
            stored = rows[request_id][name]
            assert stored not in (record[name], str(record[name])), (name, stored)
            assert stored == keyed_hash(key, record[name]), f"{name} is not the keyed hash of the value"
    files = [p for p in deployed.log_dir.rglob("*") if p.is_file()]
    assert files and not any(deployed.hash_key.encode() in p.read_bytes() for p in files), "the key is in the log"
    for page in ("/v1/model", "/metrics", "/openapi.json"):
        assert deployed.hash_key not in http.get(page).text, f"the key is shown on {page}"
    assert deployed.hash_key not in deployed.process.log_text(), "the key is in the service's own log"
