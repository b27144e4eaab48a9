"""The ledger's controls: recorded in the registry's ordered history, read back as each control's latest state."""

from __future__ import annotations

import pytest

from credit_risk.lifecycle import alias_history, ledger
from tests.conftest import Store

pytestmark = pytest.mark.code


def test_a_control_change_is_recorded_with_actor_and_reason_and_read_back_as_the_latest(store: Store) -> None:
    name = store.config.model.registry.model_name
    store.client.create_registered_model(name)
    assert ledger.read_controls(store.client, name).get("automation") is None

    ledger.record_control(
        store.client,
        name,
        "automation",
        action="pause",
        reason="drift alert",
        actor="ops-alice (admin)",
        figures={"mode": "paused"},
    )
    ledger.record_control(
        store.client,
        name,
        "automation",
        action="resume",
        reason="fixed",
        actor="ops-bob (admin)",
        figures={"mode": "on"},
    )
    controls = ledger.read_controls(store.client, name)
    latest = controls.get("automation")
    assert latest is not None
    assert (latest.figures["mode"], latest.actor, latest.reason) == ("on", "ops-bob (admin)", "fixed")
    assert controls.sequence == 2
    changes = ledger.control_history(store.client, name, "automation")
    assert [c.action for c in changes] == ["pause", "resume"]
    assert [e.sequence for e in alias_history(store.client, name)] == [1, 2], "one ordered ledger with alias moves"
