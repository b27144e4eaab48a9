"""Batch scoring follows the stop switch: while automation is paused every decision it writes is a referral."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from credit_risk.cases import AUTOMATION
from credit_risk.lifecycle import ledger
from pipelines.batch_score import BatchOptions, batch_score
from tests.conftest import TrainedModel

pytestmark = pytest.mark.code


@pytest.fixture
def paused(trained: TrainedModel) -> Iterator[None]:
    store = trained.store
    name = store.config.model.registry.model_name

    def switch(mode: str) -> None:
        ledger.record_control(
            store.client, name, AUTOMATION, action=mode, reason="batch test", actor="test", figures={"mode": mode}
        )

    switch("paused")
    try:
        yield
    finally:
        switch("on")  # the session's registry is shared: leave automation on


def test_a_batch_scored_while_automation_is_paused_refers_every_applicant(
    trained: TrainedModel, tmp_path: Path, paused: None
) -> None:
    example = trained.store.config.features.example_record()
    source = tmp_path / "applicants.csv"
    names = list(example)
    rows = [{**example, "duration_in_month": months} for months in (6, 12, 24, 48, 60)]
    source.write_text(",".join(names) + "\n" + "\n".join(",".join(str(r[n]) for n in names) for r in rows) + "\n")
    store = trained.store
    summary = batch_score(
        store.config, store.settings, BatchOptions(input=source, output=tmp_path / "out.parquet", progress=False)
    )
    table = pq.read_table(summary.output)
    assert set(table.column("decision").to_pylist()) == {"review"}
    assert table.schema.metadata[b"automation"] == b"paused"
