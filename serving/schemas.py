"""Response models: they document the API (OpenAPI) and are what the tests check bodies against.

A decision's answer (:class:`PredictionResponse`) takes its fields' descriptions from the decision
record's one definition (:mod:`credit_risk.decision_log.record`); tests/serving/test_decision_record.py
checks the two agree field by field.

The request models are not here: they are generated from the served model's
feature schema (:mod:`serving.requests`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from credit_risk.decision_log.record import answer_description as _doc
from credit_risk.lifecycle import AliasEvent


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelRef(_Out):
    """The model version that produced an answer."""

    name: str = Field(description=_doc("model.name"))
    version: str = Field(description=_doc("model.version"))
    alias: str | None = Field(description=_doc("model.alias"))


class ReasonOut(_Out):
    """A factor that raised the risk: TreeSHAP contribution to the log-odds of default, summed per field."""

    code: str
    field: str
    label: str
    value: str | int | float | None  # None: an optional field not provided
    value_label: str
    contribution: float = Field(gt=0)


class ExperimentArmOut(_Out):
    id: str = Field(description=_doc("experiment.id"))
    arm: Literal["champion", "challenger"] = Field(description=_doc("experiment.arm"))


class ChangeOut(_Out):
    """One field changed in an alternative application."""

    field: str
    label: str = Field(description="The field's name in the feature schema's words")
    from_: str | int | float = Field(alias="from", description="The applicant's value")
    to: str | int | float = Field(description="The value in the alternative")
    from_label: str
    to_label: str


class AlternativeOut(_Out):
    """An alternative application the served model would approve (or, failing that, refer)."""

    changes: list[ChangeOut] = Field(description="At most recourse.max_changes fields")
    decision: Literal["approve", "review"]
    probability_of_default: float = Field(ge=0, le=1)
    cost: float = Field(ge=0, description="The configured cost of the changes (recourse.costs); lowest first")
    summary: str = Field(description='The changes in words: "Credit amount (DM) 15,000 to 9,500; ..."')


class AutomationOut(_Out):
    """Present while automation is paused: the decision is a referral, the model's own is here."""

    mode: Literal["paused"] = Field(description=_doc("automation.mode"))
    model_decision: Literal["approve", "review", "decline"] = Field(description=_doc("automation.model_decision"))


class CaseRef(_Out):
    """The case a referral opened (docs/oversight.md)."""

    id: int
    state: str
    due_at: str | None


class PredictionResponse(_Out):
    """One decision's answer: each field and its description come from the decision record's definition
    (:class:`credit_risk.decision_log.record.DecisionRecord`, which also builds the body)."""

    request_id: str = Field(description=_doc("request_id"))
    model: ModelRef = Field(description=_doc("model"))
    probability_of_default: float = Field(ge=0, le=1, description=_doc("probability_of_default"))
    score: int = Field(description=_doc("score"))
    risk_band: str = Field(description=_doc("risk_band"))
    decision: Literal["approve", "review", "decline"] = Field(description=_doc("decision"))
    decision_policy_version: str = Field(description=_doc("decision_policy_version"))
    reasons: list[ReasonOut] = Field(description=_doc("reasons"))
    scored_at: str = Field(description=_doc("scored_at"))
    experiment: ExperimentArmOut | None = Field(None, description=_doc("experiment"))
    recourse: list[AlternativeOut] | None = Field(None, description=_doc("recourse"))
    recourse_note: str | None = Field(None, description=_doc("recourse_note"))
    automation: AutomationOut | None = Field(None, description=_doc("automation"))
    case: CaseRef | None = Field(None, description=_doc("case"))


class BatchResponse(_Out):
    batch_id: str
    model: ModelRef
    results: list[PredictionResponse]


class AttemptOut(_Out):
    at: str
    trigger: str
    outcome: Literal["loaded", "unchanged", "refused", "failed", "registry_error"]
    version: str | None
    error: str | None


class ModelInfo(_Out):
    name: str
    alias: str | None
    version: str
    run_id: str
    trained_at: str = Field(description="When the version was registered (UTC)")
    loaded_at: str
    artifact_sha256: str
    runtime: str = Field(
        description="What scores single requests: numpy (verified against XGBoost at load), xgboost, linear "
        "or scorecard (a points table lookup)"
    )
    signed: bool = Field(
        description="Its artifact digest's signature was checked under CREDIT_RISK_MODEL_SIGNING_KEY at load "
        "(false: no key is set, and only the digest tag vouches for the model)"
    )
    metrics: dict[str, float]
    feature_schema: dict[str, Any]
    decision: dict[str, Any]
    scorecard: dict[str, Any]
    risk_bands: list[dict[str, Any]]
    max_batch_size: int
    max_body_bytes: int
    max_batch_body_bytes: int
    last_reload: AttemptOut | None = Field(description="The last attempt that loaded, refused or failed a version")
    last_poll: AttemptOut | None = Field(description="The last registry check, whatever its outcome")
    automation: dict[str, Any] = Field(description="The stop switch: mode (on or paused), who set it, when and why")
    review: dict[str, Any] = Field(description="Human review: which decisions open a case, due time, reason codes")


class Health(_Out):
    status: Literal["ok"]


class Readiness(_Out):
    ready: bool
    reason: str | None = None
    version: str | None = None
    refused: str | None = Field(
        default=None, description="While ready: why the version the registry names now was refused (the old one serves)"
    )


class ReloadOut(_Out):
    attempt: AttemptOut
    served_version: str | None


class GateOut(_Out):
    """One promotion gate: the challenger's figure against the configured limit."""

    name: str = Field(description="min_auc, max_brier, min_disparate_impact or max_auc_drop")
    passed: bool
    value: float | None = Field(description="The figure; null when it cannot be computed (no or unverifiable champion)")
    limit: float
    comparison: Literal[">=", "<="] = Field(description="What the value must be against the limit")
    message: str


class PromotionCheckOut(_Out):
    """A dry-run promotion: the gates' verdict; nothing moved."""

    would_promote: bool = Field(description="Every gate holds (or force with a reason was asked for)")
    version: str = Field(description="The version evaluated (the challenger unless one was named)")
    alias: str
    champion_version: str | None
    gates: list[GateOut]
    failed_gates: list[str]
    forced: bool
    dry_run: Literal[True]
    event: None = None


class AdminActionOut(_Out):
    """A move of the serving alias and the service's reload that followed it."""

    event: AliasEvent
    reload: AttemptOut
    served_version: str | None = Field(description="What the service serves after the reload")
    gates: list[GateOut] | None = Field(default=None, description="The promotion's gates (promote only)")


class VersionOut(_Out):
    version: str
    run_id: str | None
    created_at: str
    tags: dict[str, str]
    aliases: list[str]
    validation_report: str | None = Field(
        default=None, description="API path of the version's validation report (HTML); null when it has none"
    )


class RegistryOut(_Out):
    name: str
    aliases: dict[str, str]
    versions: list[VersionOut]
    history: list[AliasEvent]


class PromoteRequest(_Out):
    """Move the serving alias to ``version`` (default: the challenger) if the promotion gates hold."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"version": "2", "reason": "Q3 retrain", "force": False, "dry_run": False}]},
    )

    version: str | None = Field(default=None, pattern=r"^[1-9][0-9]{0,9}$")
    reason: str = Field(default="", max_length=1000)
    force: bool = False
    dry_run: bool = Field(default=False, description="Evaluate the gates and answer them; move nothing")


class RollbackRequest(_Out):
    """Move the serving alias back to ``version`` (default: the version it held before)."""

    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [{"version": None, "reason": "incident 42"}]}
    )

    version: str | None = Field(default=None, pattern=r"^[1-9][0-9]{0,9}$")
    reason: str = Field(default="", max_length=1000)
