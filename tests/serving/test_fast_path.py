"""``POST /v1/predict`` answered in front of the framework (serving.api.fast) gives what the framework gives."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TrainedModel
from tests.serving.conftest import app_client

pytestmark = pytest.mark.code

VOLATILE = ("request_id", "scored_at")  # differ from one answer to the next by design


@pytest.fixture(scope="module")
def clients(trained: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[bool, TestClient]]:
    with (
        app_client(trained.store, tmp_path_factory.mktemp("fast-log"), fast_path=True) as fast,
        app_client(trained.store, tmp_path_factory.mktemp("framework-log"), fast_path=False) as framework,
    ):
        yield {True: fast, False: framework}


def _requests(applicant: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
    """(label, httpx arguments, whether the fast path itself answers it)."""
    wrong = {**applicant, next(iter(applicant)): "not-a-code"}
    return [
        ("valid", {"json": applicant}, True),
        ("valid, reasons off", {"json": applicant, "params": {"reasons": "false"}}, True),
        ("valid, request id", {"json": applicant, "headers": {"X-Request-ID": "loan-7"}}, True),
        ("a bad field", {"json": wrong}, False),
        ("a missing field", {"json": {k: v for k, v in list(applicant.items())[1:]}}, False),
        ("not JSON", {"content": b"{not json", "headers": {"content-type": "application/json"}}, False),
        ("not an object", {"json": [applicant]}, False),
        ("wrong media type", {"content": b"x=1", "headers": {"content-type": "text/plain"}}, False),
        ("a query it does not know", {"json": applicant, "params": {"reasons": "maybe"}}, False),
        ("a browser's origin", {"json": applicant, "headers": {"Origin": "http://localhost:8501"}}, False),
    ]


def _comparable(response: Any) -> tuple[int, Any, str | None]:
    body = response.json()
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in VOLATILE}
    return response.status_code, body, response.headers.get("content-type")


def test_the_fast_path_answers_every_request_as_the_framework_does(
    clients: dict[bool, TestClient], applicant: dict[str, Any]
) -> None:
    fast_app = clients[True].app._fast  # type: ignore[attr-defined]
    framework_app = clients[False].app._fast  # type: ignore[attr-defined]
    expected_fast = 0
    for label, arguments, answered_fast in _requests(applicant):
        before = fast_app.answered
        got = clients[True].post("/v1/predict", **arguments)
        want = clients[False].post("/v1/predict", **arguments)
        assert _comparable(got) == _comparable(want), label
        assert (fast_app.answered - before == 1) is answered_fast, f"{label}: taken by the wrong path"
        expected_fast += answered_fast
        if "headers" in arguments and "X-Request-ID" in arguments["headers"]:
            assert got.headers["x-request-id"] == got.json()["request_id"] == "loan-7"
    assert fast_app.answered == expected_fast and framework_app.answered == 0


def test_the_fast_path_counts_each_request_in_the_metrics(
    clients: dict[bool, TestClient], applicant: dict[str, Any]
) -> None:
    def count(text: str, status: str) -> float:
        line = f'credit_risk_http_requests_total{{route="/v1/predict",status="{status}"}} '
        return sum(float(row.split(" ")[-1]) for row in text.splitlines() if row.startswith(line))

    client = clients[True]
    before = client.get("/metrics").text
    assert client.post("/v1/predict", json=applicant).status_code == 200
    assert client.post("/v1/predict", json={}).status_code == 422
    after = client.get("/metrics").text
    assert count(after, "200") - count(before, "200") == 1
    assert count(after, "422") - count(before, "422") == 1


def test_a_reused_or_retried_request_id_is_answered_as_the_framework_does(
    clients: dict[bool, TestClient], applicant: dict[str, Any]
) -> None:
    other = {**applicant, "duration_in_month": applicant["duration_in_month"] + 1}
    seen = {}
    for fast, client in clients.items():
        first = client.post("/v1/predict", json=applicant, headers={"X-Request-ID": "twice-7"})
        before = client.app._fast.answered  # type: ignore[attr-defined]
        refused = client.post("/v1/predict", json=other, headers={"X-Request-ID": "twice-7"})
        retried = client.post("/v1/predict", json=applicant, headers={"X-Request-ID": "twice-7"})
        assert client.app._fast.answered - before == (1 if fast else 0), "the retry taken by the wrong path"  # type: ignore[attr-defined]
        assert retried.content == first.content
        seen[fast] = (
            refused.status_code,
            sorted(refused.json()),
            refused.json()["rule"],
            retried.status_code,
            retried.headers.get("idempotent-replayed"),
            retried.headers.get("content-type"),
        )
    assert seen[True] == seen[False], seen
    assert seen[True][:5] == (409, ["detail", "request_id", "rule"], "request_id_reused", 200, "true"), seen
