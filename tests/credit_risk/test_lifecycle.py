"""The lifecycle core on a real store: no artifact code runs in promotion, and the alias history
keeps every move, in order, under concurrent writers and across a crash."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
from mlflow.tracking import MlflowClient

from credit_risk import lifecycle, registry
from credit_risk.config import PROJECT_ROOT
from tests.conftest import Store, two_versions_store

pytestmark = pytest.mark.code

NAME = "credit-risk"
ALIAS = "production"


@dataclass
class TwoVersions:
    store: Store
    first: str  # in production at the start and end of every test
    second: str  # the challenger


@pytest.fixture(scope="module")
def module_two(tmp_path_factory: pytest.TempPathFactory) -> TwoVersions:
    store, first, second = two_versions_store(tmp_path_factory)
    registry.connect(store.settings, PROJECT_ROOT)
    return TwoVersions(store, first, second)


@pytest.fixture
def two(module_two: TwoVersions) -> Iterator[TwoVersions]:
    registry.connect(module_two.store.settings, PROJECT_ROOT)
    yield module_two
    client = module_two.store.client
    lifecycle.reconcile(client, NAME, stale_after=0)
    if registry.aliases_of(client, NAME).get(ALIAS) != module_two.first:
        lifecycle.move_alias(client, NAME, ALIAS, module_two.first, action="test", reason="reset")


def _artifact_dir(store: Store, version: str) -> Path:
    uri = store.client.get_model_version_download_uri(NAME, version)
    return Path(unquote(urlparse(uri).path))


def _holder(store: Store) -> str | None:
    return registry.aliases_of(store.client, NAME).get(ALIAS)


# ------------------------------------------------------------------ no code from the artifact


def test_a_version_whose_pyfunc_code_was_altered_is_refused_and_its_code_never_runs(
    two: TwoVersions, tmp_path: Path
) -> None:
    marker = tmp_path / "artifact-code-ran"
    code = _artifact_dir(two.store, two.second) / "pyfunc_model.py"  # the version's python_model file
    original = code.read_bytes()
    code.write_bytes(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n".encode() + original)
    config, settings = two.store.config, two.store.settings
    try:
        for kwargs in ({}, {"dry_run": True}, {"force": True, "reason": "an override cannot skip the digest"}):
            with pytest.raises(lifecycle.PromotionRefused, match="artifact hash mismatch"):
                lifecycle.promote(config, settings, version=two.second, **kwargs)
        assert not marker.exists(), "promotion ran code from the version's artifacts"
        assert _holder(two.store) == two.first
    finally:
        code.write_bytes(original)
    report = lifecycle.promote(config, settings, version=two.second, dry_run=True)  # restored: evaluated
    assert report.version == two.second and not marker.exists()


def test_a_version_without_a_digest_tag_cannot_be_promoted(two: TwoVersions) -> None:
    client = two.store.client
    tag = registry.get_version(client, NAME, two.second).tags[registry.ARTIFACT_DIGEST_TAG]
    client.delete_model_version_tag(NAME, two.second, registry.ARTIFACT_DIGEST_TAG)
    try:
        for kwargs in ({}, {"force": True, "reason": "override"}, {"dry_run": True}):
            with pytest.raises(lifecycle.PromotionRefused, match="has no artifact_sha256 tag"):
                lifecycle.promote(two.store.config, two.store.settings, version=two.second, **kwargs)
        assert _holder(two.store) == two.first
    finally:
        client.set_model_version_tag(NAME, two.second, registry.ARTIFACT_DIGEST_TAG, tag)


def test_dry_run_reports_every_gate_and_moves_nothing(two: TwoVersions) -> None:
    before = lifecycle.alias_history(two.store.client, NAME)
    report = lifecycle.promote(two.store.config, two.store.settings, dry_run=True).to_json()
    assert (report["version"], report["champion_version"], report["dry_run"]) == (two.second, two.first, True)
    gates = {gate["name"]: gate for gate in report["gates"]}
    assert set(gates) == {"min_auc", "max_brier", "min_disparate_impact", "max_auc_drop"}
    limits = two.store.config.model.promotion
    assert gates["min_auc"]["limit"] == limits.min_auc and gates["max_auc_drop"]["limit"] == limits.max_auc_drop
    for gate in gates.values():
        assert isinstance(gate["value"], float) and gate["passed"] in (True, False)
    assert report["would_promote"] == all(g["passed"] for g in gates.values())
    assert report["failed_gates"] == [n for n, g in gates.items() if not g["passed"]]
    assert report["event"] is None
    assert _holder(two.store) == two.first
    assert lifecycle.alias_history(two.store.client, NAME) == before


# ------------------------------------------------------------------ the alias history


def test_concurrent_moves_are_all_recorded_in_order(two: TwoVersions) -> None:
    writers, moves = 4, 4
    store = two.store
    before = len(lifecycle.alias_history(store.client, NAME))
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(index: int) -> None:
        client = MlflowClient(tracking_uri=store.uri, registry_uri=store.uri)  # as another worker would
        start.wait()
        try:
            for move in range(moves):
                target = two.second if (index + move) % 2 == 0 else two.first
                lifecycle.move_alias(
                    client, NAME, ALIAS, target, action="test", reason=f"writer {index} move {move}", actor=f"w{index}"
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    history = lifecycle.alias_history(store.client, NAME)[before:]
    assert len(history) == writers * moves, "a move is missing from the history"
    assert {e.state for e in history} == {"completed"}
    assert sorted((e.actor, e.reason) for e in history) == sorted(
        (f"w{i}", f"writer {i} move {m}") for i in range(writers) for m in range(moves)
    )
    sequences = [e.sequence for e in history]
    assert sequences == list(range(sequences[0], sequences[0] + len(history))), "sequence numbers skip or repeat"
    for earlier, later in itertools.pairwise(history):
        assert later.from_version == earlier.to_version, (earlier, later)  # each move saw the one before
    assert _holder(store) == history[-1].to_version


class _KilledBeforeTheMove(MlflowClient):
    """A writer that dies (SIGKILL-like: nothing after runs) between its intent and the alias move."""

    def set_registered_model_alias(self, *args: Any, **kwargs: Any) -> None:
        raise SystemExit("killed before moving the alias")


class _KilledAfterTheMove(MlflowClient):
    """A writer that dies right after moving the alias, before confirming the entry."""

    def set_registered_model_alias(self, *args: Any, **kwargs: Any) -> None:
        super().set_registered_model_alias(*args, **kwargs)
        raise SystemExit("killed after moving the alias")


def test_an_intent_left_by_a_crash_is_visible_then_reconciled(two: TwoVersions) -> None:
    store = two.store
    killed = _KilledBeforeTheMove(tracking_uri=store.uri, registry_uri=store.uri)
    with pytest.raises(SystemExit):
        lifecycle.move_alias(killed, NAME, ALIAS, two.second, action="test", reason="crash", actor="crashed")
    left = lifecycle.alias_history(store.client, NAME)[-1]
    assert (left.state, left.from_version, left.to_version, left.actor) == ("intent", two.first, two.second, "crashed")
    assert _holder(store) == two.first
    # the next move waits for the open entry, settles it once stale (from the alias), then goes on
    event = lifecycle.move_alias(
        store.client, NAME, ALIAS, two.second, action="test", reason="after the crash", stale_after=0.5
    )
    settled = next(e for e in lifecycle.alias_history(store.client, NAME) if e.sequence == left.sequence)
    assert settled.state == "aborted" and "reconciled" in settled.note
    assert (event.sequence, event.from_version, event.state) == (left.sequence + 1, two.first, "completed")

    died = _KilledAfterTheMove(tracking_uri=store.uri, registry_uri=store.uri)
    with pytest.raises(SystemExit):
        lifecycle.move_alias(died, NAME, ALIAS, two.first, action="test", reason="crash after", actor="crashed")
    assert lifecycle.alias_history(store.client, NAME)[-1].state == "intent"
    assert lifecycle.reconcile(store.client, NAME, stale_after=60) == []  # not stale yet: maybe still running
    (settled,) = lifecycle.reconcile(store.client, NAME, stale_after=0)
    assert (settled.state, settled.to_version) == ("completed", two.first) and "reconciled" in settled.note
    assert lifecycle.alias_history(store.client, NAME)[-1] == settled
