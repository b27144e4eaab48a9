"""What would change the decision: the recourse search on the session's real model (and a logistic one)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from credit_risk import registry
from credit_risk.config import ConfigError, RecourseConfig, load_project_config
from credit_risk.data import load_applicants
from credit_risk.decision import DECISIONS, DecisionEngine
from credit_risk.recourse import RecourseSearch
from credit_risk.schema import FieldSpec
from credit_risk.scoring import Encoder, ScoringModel
from credit_risk.trees import _applicants, service_runtime
from pipelines.candidates import Candidate, fit_model
from tests.conftest import TrainedModel, write_config_dir

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def model(trained: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> ScoringModel:
    local = registry.download_version(
        trained.store.client, "credit-risk", trained.version.version, tmp_path_factory.mktemp("model")
    )
    return ScoringModel.load(registry.scoring_dir(local))


@pytest.fixture(scope="module")
def engine(trained: TrainedModel, model: ScoringModel) -> DecisionEngine:
    """The engine as the service builds it: the service's scorer for the served model."""
    scorer, _ = service_runtime(model, trained.store.config.model.serving.tree_runtime)
    return DecisionEngine(scorer, trained.store.config.model)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def declined(model: ScoringModel, engine: DecisionEngine) -> list[dict[str, Any]]:
    """1,000 random applicants (the whole domain, drawn where real applicants are) the model declines."""
    found: list[dict[str, Any]] = []
    for seed in range(40):
        records = _applicants(model, 1000, seed)
        decided = engine.decide(model.encoder.encode_records(records), with_reasons=False)
        found += [r for r, d in zip(records, decided.decision_index.tolist(), strict=True) if d == 2]
        if len(found) >= 1000:
            return found[:1000]
    raise AssertionError(f"only {len(found)} declined applicants in 40,000 random ones")


@pytest.fixture(scope="module")
def answers(engine: DecisionEngine, declined: list[dict[str, Any]]) -> list[Any]:
    search = RecourseSearch(engine, RecourseConfig(max_changes=3))
    return [search.search(record, decision="decline") for record in declined]


def test_at_least_95_percent_of_1000_random_declined_applicants_get_an_alternative(answers: list[Any]) -> None:
    helped = sum(1 for answer in answers if answer.alternatives)
    assert helped >= 950, f"only {helped} of {len(answers)} declined applicants got an alternative"
    assert all(len(a.changes) <= 3 for answer in answers for a in answer.alternatives)


def test_every_alternative_rescored_reaches_its_claimed_decision(
    engine: DecisionEngine, declined: list[dict[str, Any]], answers: list[Any]
) -> None:
    rows, claimed = [], []
    for record, answer in zip(declined, answers, strict=True):
        for alternative in answer.alternatives:
            rows.append({**record, **{c.field: c.to_value for c in alternative.changes}})
            claimed.append(alternative.decision)
    assert rows, "no alternative to check"
    encoder = engine.model.encoder
    # one at a time, as the service scores a single applicant
    got = [
        DECISIONS[int(engine.decide(encoder.encode_records([r]), with_reasons=False).decision_index[0])] for r in rows
    ]
    assert got == claimed


def test_an_applicant_without_an_alternative_gets_a_note_saying_why(answers: list[Any]) -> None:
    for answer in answers:
        assert bool(answer.alternatives) != bool(answer.note), answer


def test_approval_alternatives_come_before_referrals_and_cheapest_first(answers: list[Any]) -> None:
    for answer in answers:
        decisions = {a.decision for a in answer.alternatives}
        assert len(decisions) <= 1, "an answer mixes approvals and referrals"
        costs = [a.cost for a in answer.alternatives]
        assert costs == sorted(costs)


def test_alternatives_name_the_changes_in_the_schemas_words(engine: DecisionEngine) -> None:
    schema = engine.model.schema
    record = {
        **schema.example_record(),
        "status_of_existing_checking_account": "overdrawn",
        "duration_in_month": 60,
        "credit_amount": 15000,
        "credit_history": "no_credits_or_all_paid",
        "savings_account_and_bonds": "below_100_dm",
        "installment_rate_in_percentage_of_disposable_income": 4,
    }
    answer = RecourseSearch(engine, RecourseConfig()).search(record)
    assert answer.alternatives, answer.note
    for alternative in answer.alternatives:
        for change in alternative.changes:
            spec = schema.by_name[change.field]
            assert f"{spec.label} {change.from_label} to {change.to_label}" in alternative.summary
            if change.field == "credit_amount":
                assert change.from_label == "15,000"


def test_an_approved_applicant_needs_no_change(engine: DecisionEngine, model: ScoringModel) -> None:
    records = _applicants(model, 400, 7)
    decided = engine.decide(model.encoder.encode_records(records), with_reasons=False)
    approved = records[int(np.flatnonzero(decided.decision_index == 0)[0])]
    answer = RecourseSearch(engine, RecourseConfig()).search(approved)
    assert answer.alternatives == () and "approved" in (answer.note or "")


# ---------------------------------------------------------------- properties


def _rule_holds(spec: FieldSpec, before: Any, after: Any) -> bool:
    rule = spec.recourse
    if rule is None or rule.sign == 0 or spec.protected:
        return False
    if spec.type == "categorical":
        order = list(rule.order or ())
        return before in order and after in order and (order.index(after) - order.index(before)) * rule.sign > 0
    low, high = spec.recourse_bounds()
    return (after - before) * rule.sign > 0 and low <= after <= high


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), max_changes=st.integers(1, 3))
def test_only_actionable_fields_change_in_their_direction_and_within_bounds(
    engine: DecisionEngine, model: ScoringModel, seed: int, max_changes: int
) -> None:
    search = RecourseSearch(engine, RecourseConfig(max_changes=max_changes))
    schema = model.schema
    record = _applicants(model, 3, seed)[2]
    record.update({f.name: schema.example_record()[f.name] for f in schema.protected_fields})
    answer = search.search(record)
    for alternative in answer.alternatives:
        assert 1 <= len(alternative.changes) <= max_changes
        for change in alternative.changes:
            spec = schema.by_name[change.field]
            assert not spec.protected, f"protected field {spec.name} changed"
            assert spec.recourse is not None and spec.recourse.action != "immutable", f"{spec.name} changed"
            assert _rule_holds(spec, record[spec.name], change.to_value), (spec.name, record[spec.name], change)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_a_logistic_models_alternatives_reach_their_decision_and_keep_the_rules(
    logistic_engine: DecisionEngine, seed: int
) -> None:
    model = logistic_engine.model
    record = _applicants(model, 3, seed)[2]
    answer = RecourseSearch(logistic_engine, RecourseConfig(max_changes=3)).search(record)
    for alternative in answer.alternatives:
        changed = {**record, **{c.field: c.to_value for c in alternative.changes}}
        decided = logistic_engine.decide(model.encoder.encode_records([changed]), with_reasons=False)
        assert DECISIONS[int(decided.decision_index[0])] == alternative.decision
        for change in alternative.changes:
            assert _rule_holds(model.schema.by_name[change.field], record[change.field], change.to_value)


@pytest.fixture(scope="module")
def logistic_engine(trained: TrainedModel) -> DecisionEngine:
    config = trained.store.config
    features, label = load_applicants(config.resolve(config.training.data.path), config.features)
    matrix = Encoder(config.features).encode_frame(features)
    model = fit_model(Candidate("logistic", {"C": 0.3}), matrix, label.to_numpy(), schema=config.features, seed=1)
    return DecisionEngine(model, config.model)


# ---------------------------------------------------------------- the schema's and config's rules


def _field(**recourse: Any) -> dict[str, Any]:
    return {
        "name": "duration_in_month",
        "type": "integer",
        "label": "Loan duration",
        "description": "Term.",
        "reason_code": "DUR",
        "min": 1,
        "max": 120,
        "monotone": "increasing",
        "recourse": recourse,
    }


def test_a_direction_that_raises_the_risk_under_the_monotone_constraint_is_refused() -> None:
    with pytest.raises(ValidationError, match="raises the risk under the field's monotone constraint"):
        FieldSpec.model_validate(_field(action="increase"))


def test_recourse_bounds_outside_the_fields_range_are_refused() -> None:
    with pytest.raises(ValidationError, match="within the field's range"):
        FieldSpec.model_validate(_field(action="decrease", min=0))


def test_a_protected_field_may_not_be_actionable() -> None:
    spec = {**_field(action="decrease"), "protected": True, "group_edges": [25], "monotone": None}
    with pytest.raises(ValidationError, match="a protected field never changes"):
        FieldSpec.model_validate(spec)


def test_a_categorical_order_must_name_the_fields_codes() -> None:
    spec = {
        "name": "savings",
        "type": "categorical",
        "label": "Savings",
        "description": "Savings.",
        "reason_code": "SAV",
        "categories": [
            {"code": "low", "label": "Low", "source": "l"},
            {"code": "high", "label": "High", "source": "h"},
        ],
        "recourse": {"action": "increase", "order": ["low", "huge"]},
    }
    with pytest.raises(ValidationError, match="order must list at least two of the field's codes"):
        FieldSpec.model_validate(spec)


def test_recourse_costs_for_an_unknown_field_fail_at_start_naming_it(tmp_path: Any) -> None:
    config_dir = write_config_dir(tmp_path / "config", model={"recourse": {"costs": {"shoe_size": 1.0}}})
    with pytest.raises(ConfigError, match="shoe_size"):
        load_project_config(config_dir)


def test_the_shipped_config_declares_recourse_for_german_credits_actionable_fields() -> None:
    config = load_project_config()
    actions = {f.name: f.recourse.action for f in config.features.fields if f.recourse is not None}
    assert actions["duration_in_month"] == "decrease"
    assert actions["credit_amount"] == "decrease"
    assert actions["savings_account_and_bonds"] == "increase"
    assert actions["installment_rate_in_percentage_of_disposable_income"] == "decrease"
    assert all(actions.get(f.name) in (None, "immutable") for f in config.features.protected_fields)
    assert config.model.recourse.max_changes == 2
