"""The reliability fleet is what its tests take it for: a good version serving, a fine successor, a
tampered one only the digest check can tell, and a broken one that passes the digest and fails to load.

It runs in the suite's parallel part (it is not marked ``alone``), so the fleet is trained there, on a
worker with time to spare, and the tests that run alone find it built (:func:`tests.conftest.built_once`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from credit_risk import registry
from credit_risk.scoring import ScoringModel
from tests.reliability.conftest import ALIAS, NAME, Fleet


def _fetch(fleet: Fleet, version: str, destination: Path) -> Path:
    found = registry.get_version(fleet.store.client, NAME, version)
    assert found is not None, version
    return registry.fetch_verified(fleet.store.client, found, destination)


def test_the_good_version_serves_and_both_good_versions_pass_the_digest_and_load(fleet: Fleet, tmp_path: Path) -> None:
    assert registry.aliases_of(fleet.store.client, NAME).get(ALIAS) == fleet.good
    for version in (fleet.good, fleet.next_good):
        ScoringModel.load(registry.scoring_dir(_fetch(fleet, version, tmp_path / version)))


def test_the_tampered_version_is_refused_by_its_digest(fleet: Fleet, tmp_path: Path) -> None:
    with pytest.raises(registry.UnverifiedArtifactError, match="artifact hash mismatch"):
        _fetch(fleet, fleet.tampered, tmp_path)


def test_the_broken_version_passes_its_digest_and_fails_to_load(fleet: Fleet, tmp_path: Path) -> None:
    folder = registry.scoring_dir(_fetch(fleet, fleet.broken, tmp_path))
    with pytest.raises(Exception):  # noqa: B017 - whatever the loader raises, it must not load
        ScoringModel.load(folder)
