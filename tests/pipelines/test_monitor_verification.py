"""The monitor reads the served version's profile from a verified download, as every load does."""

from __future__ import annotations

import pytest

from credit_risk import registry
from pipelines.monitor import load_reference
from tests.conftest import TrainedModel

pytestmark = pytest.mark.code


def test_the_monitor_refuses_a_version_whose_artifacts_do_not_match_the_digest(trained: TrainedModel) -> None:
    store, version = trained.store, trained.version
    name, number = version.name, str(version.version)
    good = store.client.get_model_version(name, number).tags[registry.ARTIFACT_DIGEST_TAG]
    assert load_reference(store.client, store.config, None).version == number
    store.client.set_model_version_tag(name, number, registry.ARTIFACT_DIGEST_TAG, "0" * 64)
    try:
        with pytest.raises(registry.UnverifiedArtifactError, match="artifact hash mismatch"):
            load_reference(store.client, store.config, None)
        with pytest.raises(registry.UnverifiedArtifactError, match="artifact hash mismatch"):
            load_reference(store.client, store.config, number)
    finally:
        store.client.set_model_version_tag(name, number, registry.ARTIFACT_DIGEST_TAG, good)
