"""Schemathesis over the service's own OpenAPI document, against a real uvicorn process.

Stateless, a bounded and seeded number of examples per operation, half valid
and half invalid data: no server error, no response outside the documented
schema, status codes or content types. Admin operations get the token (with
a one-version registry every promote or rollback is refused before it runs).

The operations are listed here (one test each, so a failure names it) and a
test checks the list against the document, so a new route cannot be missed.
Schemathesis' lazy ``from_fixture`` loader does not work with pytest 9, so
the cases come from each operation's Hypothesis strategy.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis import GenerationMode, checks

from tests.conftest import TrainedModel
from tests.support.api import RunningApi, running_api

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]  # a hang guard (set-up trains models)

EXAMPLES_PER_MODE = 15  # valid and invalid: 30 examples per operation that takes input
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
OPERATIONS = [
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("POST", "/v1/predict"),
    ("POST", "/v1/predict/batch"),
    ("GET", "/v1/model"),
    ("GET", "/v1/me"),
    ("GET", "/v1/registry"),
    ("GET", "/v1/monitoring"),
    ("POST", "/v1/admin/reload"),
    ("POST", "/v1/admin/promote"),
    ("POST", "/v1/admin/rollback"),
    ("GET", "/v1/decisions"),
    ("GET", "/v1/decisions/{request_id}"),
    ("POST", "/v1/decisions/{request_id}/replay"),
    ("GET", "/v1/decisions/{request_id}/recourse"),
    ("GET", "/v1/decisions/{request_id}/notice.pdf"),
    ("GET", "/v1/registry/versions/{version}/validation_report"),
    ("GET", "/v1/registry/versions/{version}/validation_report/data"),
    ("POST", "/v1/outcomes"),
    ("GET", "/v1/performance"),
    ("GET", "/v1/admin/jobs/{run_id}"),
    ("GET", "/v1/cases"),
    ("GET", "/v1/cases/{case_id}"),
    ("POST", "/v1/cases/{case_id}/claim"),
    ("POST", "/v1/cases/{case_id}/release"),
    ("POST", "/v1/cases/{case_id}/decide"),
    ("POST", "/v1/decisions/{request_id}/contest"),
    ("POST", "/v1/admin/automation"),
    ("GET", "/v1/approvals"),
    ("POST", "/v1/admin/experiments"),
    ("POST", "/v1/admin/experiments/{experiment_id}/stop"),
    ("GET", "/v1/experiments"),
    ("GET", "/v1/experiments/{experiment_id}"),
]
# documented, not fuzzed: a valid body starts a real job (a process of its own that outlives the service);
# tests/serving/test_jobs.py runs it to its end and checks its refusals
NOT_FUZZED = [("POST", "/v1/admin/jobs")]


@pytest.fixture(scope="module")
def fuzz_api(trained: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    with running_api(trained.store, tmp_path=tmp_path_factory.mktemp("fuzz")) as api:
        yield api


@pytest.fixture(scope="module")
def api_schema(fuzz_api: RunningApi) -> schemathesis.schemas.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzz_api.url}/openapi.json")


def test_the_fuzzed_operations_are_all_the_documented_ones(api_schema: schemathesis.schemas.BaseSchema) -> None:
    documented = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert documented == set(OPERATIONS) | set(NOT_FUZZED)


# invalid data needs something to break: a body or a parameter (most GET routes take none)
CASES = [(m, p, GenerationMode.POSITIVE) for m, p in OPERATIONS] + [
    (m, p, GenerationMode.NEGATIVE) for m, p in OPERATIONS if m == "POST" or "{" in p or p == "/v1/decisions"
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_operation_answers_as_documented(
    api_schema: schemathesis.schemas.BaseSchema, fuzz_api: RunningApi, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]
    # the decision routes take the admin token too (admin may do what auditor may)
    private = ("/v1/admin/", "/v1/decisions", "/v1/outcomes", "/v1/me", "/v1/cases")
    headers = fuzz_api.admin_headers() if path.startswith(private) else None

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=EXAMPLES_PER_MODE,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    def answers_as_documented(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=fuzz_api.url, headers=headers, checks=CHECKS, timeout=30)

    try:
        answers_as_documented()
    finally:
        if path == "/v1/admin/automation":  # the session's registry is shared: leave automation on
            back = httpx.post(
                f"{fuzz_api.url}{path}", json={"mode": "on", "reason": "fuzzed"}, headers=headers, timeout=60
            )
            assert back.status_code == 200, back.text
