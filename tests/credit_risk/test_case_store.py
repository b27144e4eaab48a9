"""The case store on both databases it supports: SQLite (the default) and a real PostgreSQL server.

Every test runs on each: the migrations, opening a case exactly once, the claim race (several
stores, like several workers or instances, claiming one case at once), lapsed claims, the queue's
order and overdue figures, and the reconciliation from real decision-log files.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from credit_risk.cases import CaseConflictError, CaseStore, open_store
from credit_risk.cases.database import VERSION_TABLE
from credit_risk.cases.models import metadata
from credit_risk.config import ReviewConfig, load_project_config
from credit_risk.decision_log.format import log_schema, to_table
from tests.support.postgres import postgres_unavailable_reason, running_postgres, sqlalchemy_url
from tests.support.required import require_component

pytestmark = pytest.mark.code

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
_databases = itertools.count()


@pytest.fixture(scope="module")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_component(postgres_unavailable_reason())
    with running_postgres(tmp_path_factory.mktemp("cases-pg"), dbname="cases") as url:
        yield sqlalchemy_url(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cases.sqlite'}"
    server = request.getfixturevalue("postgres_server")
    name = f"cases_{next(_databases)}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"create database {name}")
    admin.dispose()
    return server.rsplit("/", 1)[0] + f"/{name}"


def make_store(url: str, log_dir: Path | None = None, **review: Any) -> CaseStore:
    store = CaseStore(url, ReviewConfig(**review), log_dir=log_dir)
    store.migrate()
    return store


def record(request_id: str, decision: str = "review", *, scored_at: datetime = NOW, **extra: Any) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "applicant_id": f"applicant-{request_id}",
        "scored_at": scored_at,
        "model_name": "credit-risk",
        "model_version": "3",
        "probability": 0.3,
        "score": 560,
        "risk_band": "D",
        "decision": decision,
        "decision_policy_version": "2026-11-24.1",
        "reasons": ["CHK", "DUR"],
        **extra,
    }


def test_the_migrations_create_the_tables_the_store_queries(database_url: str) -> None:
    store = make_store(database_url)
    inspector = sa.inspect(store.engine)
    for table in metadata.sorted_tables:
        migrated = {column["name"] for column in inspector.get_columns(table.name)}
        assert migrated == {column.name for column in table.columns}, table.name
    assert VERSION_TABLE in inspector.get_table_names()
    store.migrate()  # a second start finds the schema current


def test_two_workers_migrating_at_once_migrate_once(database_url: str) -> None:
    stores = [CaseStore(database_url, ReviewConfig()) for _ in range(3)]
    errors: list[BaseException] = []

    def migrate(store: CaseStore) -> None:
        try:
            store.migrate()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors


def test_a_case_is_opened_once_however_often_and_by_however_many_it_is_opened(database_url: str) -> None:
    stores = [make_store(database_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    found: list[dict[str, int]] = []

    def open_twice(store: CaseStore) -> None:
        barrier.wait(10)
        found.append(store.open_cases([record("r-1"), record("r-2")], source="answer", now=NOW))
        found.append(store.open_cases([record("r-1")], source="log", now=NOW))

    threads = [threading.Thread(target=open_twice, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert stores[0].queue(now=NOW).total == 2
    assert len({answer["r-1"] for answer in found}) == 1, "every opener is told the same case"
    assert [e["action"] for e in stores[0].for_decision("r-1", now=NOW)[0]["history"]] == ["opened"]


def test_decisions_outside_review_decisions_open_no_case(database_url: str) -> None:
    store = make_store(database_url)
    assert store.open_cases([record("a", "approve"), record("d", "decline")], source="answer", now=NOW) == {}
    declines = make_store(database_url, decisions=("review", "decline"))
    assert set(declines.open_cases([record("d", "decline")], source="answer", now=NOW)) == {"d"}


def test_of_reviewers_claiming_one_case_at_once_exactly_one_wins(database_url: str) -> None:
    stores = [make_store(database_url) for _ in range(6)]  # each its own pool: like separate workers
    case_id = stores[0].open_cases([record("race-1")], source="answer", now=NOW)["race-1"]
    barrier = threading.Barrier(len(stores))
    won: list[str] = []
    refused: list[str] = []

    def claim(i: int, store: CaseStore) -> None:
        barrier.wait(10)
        try:
            store.claim(case_id, f"reviewer-{i}", now=NOW)
            won.append(f"reviewer-{i}")
        except CaseConflictError:
            refused.append(f"reviewer-{i}")

    threads = [threading.Thread(target=claim, args=(i, s)) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(won) == 1 and len(refused) == len(stores) - 1
    case = stores[0].get(case_id, now=NOW)
    assert case["claimed_by"] == won[0]
    assert [e["action"] for e in case["history"]] == ["opened", "claimed"]


def test_a_lapsed_claim_may_be_taken_by_another_reviewer(database_url: str) -> None:
    store = make_store(database_url, claim_minutes=30)
    case_id = store.open_cases([record("lapse-1")], source="answer", now=NOW)["lapse-1"]
    store.claim(case_id, "ann", now=NOW)
    with pytest.raises(CaseConflictError):
        store.claim(case_id, "bob", now=NOW + timedelta(minutes=29))
    assert store.claim(case_id, "bob", now=NOW + timedelta(minutes=31))["claimed_by"] == "bob"


def test_the_queue_is_oldest_due_first_and_counts_overdue_cases(database_url: str) -> None:
    store = make_store(database_url, sla_hours=24)
    store.open_cases(
        [
            record("late", scored_at=NOW - timedelta(hours=30)),
            record("soon", scored_at=NOW - timedelta(hours=20)),
            record("new", scored_at=NOW),
        ],
        source="answer",
        now=NOW,
    )
    page = store.queue(now=NOW)
    assert [case["request_id"] for case in page.cases] == ["late", "soon", "new"]
    assert [case["request_id"] for case in store.queue(overdue=True, now=NOW).cases] == ["late"]
    figures = store.gauges(now=NOW)
    assert (figures["open"], figures["overdue"]) == (3, 1)


def test_reconciliation_opens_the_cases_of_real_log_files_once(database_url: str, tmp_path: Path) -> None:
    config = load_project_config()
    schema = log_schema(config.features)
    example = config.features.example_record()
    rows = [
        {**example, **record(f"log-{i}", decision)}
        for i, decision in enumerate(["review", "approve", "review", "decline"])
    ]
    folder = tmp_path / "predictions" / "date=2026-12-07"
    folder.mkdir(parents=True)
    pq.write_table(to_table(rows, schema), folder / "part-0.parquet")
    pq.write_table(to_table(rows[:1], schema), folder / ".part-1.parquet")  # being written: skipped
    store = make_store(database_url, log_dir=tmp_path / "predictions")
    assert store.reconcile(now=NOW) == 2
    assert store.reconcile(now=NOW) == 0
    assert sorted(case["request_id"] for case in store.queue(now=NOW).cases) == ["log-0", "log-2"]


def test_the_default_store_is_sqlite_beside_the_log(tmp_path: Path) -> None:
    store = open_store(ReviewConfig(), tmp_path / "logs" / "predictions")
    assert (tmp_path / "logs" / "cases" / "cases.sqlite").is_file()
    store.close()
