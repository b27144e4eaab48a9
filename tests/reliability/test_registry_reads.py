"""The public registry reads under a flood: ``/v1/registry`` and a version's validation report cost
one registry read per ``serving.registry_read_cache_seconds``, however many anonymous calls arrive,
and an alias move made through this service shows at once.

The registry reads are counted where they reach the real SQLite store: the MLflow client's method
(and MLflow's artifact download) wrapped by a counting proxy that calls the real one.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import mlflow
import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from credit_risk import registry
from tests.reliability.conftest import ALIAS, Fleet
from tests.serving.conftest import ADMIN_TOKEN, app_client

pytestmark = pytest.mark.code

CALLS = 40
KEPT = 30.0  # seconds: far longer than the test, so every call falls within it


def _counted(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, *, when: Any = None) -> list[tuple]:
    """Every call of ``owner.name`` (the real one still runs), recorded when ``when(kwargs)`` holds."""
    calls: list[tuple] = []
    real = getattr(owner, name)

    @functools.wraps(real)
    def counting(*args: Any, **kwargs: Any) -> Any:
        if when is None or when(kwargs):
            calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls


@pytest.fixture
def service(on_good: Fleet, tmp_path: Path) -> Iterator[TestClient]:
    with app_client(on_good.store, tmp_path, registry_read_cache_seconds=KEPT) as client:
        yield client


def _flood(client: TestClient, path: str) -> list[int]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: client.get(path).status_code, range(CALLS)))


def test_a_flood_of_registry_views_reads_the_registry_once(
    service: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = _counted(monkeypatch, MlflowClient, "search_model_versions")
    assert _flood(service, "/v1/registry") == [200] * CALLS
    assert len(reads) == 1, f"{len(reads)} registry reads for {CALLS} calls within {KEPT:.0f} s"


def test_a_flood_of_report_calls_reads_the_report_once(
    service: TestClient, on_good: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    is_report = lambda kwargs: kwargs.get("artifact_path") == registry.REPORT_DIR  # noqa: E731
    downloads = _counted(monkeypatch, mlflow.artifacts, "download_artifacts", when=is_report)
    path = f"/v1/registry/versions/{on_good.good}/validation_report"
    assert _flood(service, path) == [200] * CALLS
    assert len(downloads) == 1, f"{len(downloads)} report downloads for {CALLS} calls"


def test_guessed_version_numbers_cost_no_registry_read(service: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    service.get("/v1/registry")  # the registry view, read once
    reads = _counted(monkeypatch, MlflowClient, "get_model_version")
    answers = [service.get(f"/v1/registry/versions/{n}/validation_report").status_code for n in range(900, 900 + CALLS)]
    assert answers == [404] * CALLS
    assert not reads, "a version the registry view does not list is answered from it"


def test_an_alias_move_made_through_the_service_shows_at_once(service: TestClient, on_good: Fleet) -> None:
    assert service.get("/v1/registry").json()["aliases"][ALIAS] == on_good.good
    moved = service.post(
        "/v1/admin/promote",
        json={"version": on_good.next_good, "reason": "read cache test", "force": True},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert moved.status_code == 200, moved.text
    view = service.get("/v1/registry").json()
    assert view["aliases"][ALIAS] == on_good.next_good, f"still {view['aliases']} right after the move"
    assert view["history"][-1]["to_version"] == on_good.next_good
