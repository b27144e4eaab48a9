"""Response models of the decision routes (they document the API and the tests check bodies against them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoggedReason(_Out):
    code: str
    field: str | None
    label: str
    value: str | int | None
    value_label: str | None


class DecisionOut(_Out):
    """A logged decision as the log holds it (privacy settings applied), with its notice."""

    request_id: str
    batch_id: str | None
    applicant_id: str | None
    scored_at: str = Field(description="UTC time, ISO 8601")
    model: dict[str, str | None] = Field(description="name and version of the model that decided")
    decision_policy_version: str | None
    inputs: dict[str, str | int | None] = Field(
        description="The applicant's fields as logged (dropped: absent; hashed: HMAC)"
    )
    probability_of_default: float
    score: int | None
    risk_band: str | None
    decision: str | None
    reasons: list[LoggedReason]
    latency_ms: float | None
    model_decision: str | None = Field(description="The model's own decision (differs while automation was paused)")
    notice: dict[str, Any] | None = Field(
        description="The adverse-action notice the final decision calls for (decline, and review when configured)"
    )
    outcome: dict[str, Any] | None = Field(description="The loan's outcome when one is known")
    cases: list[dict[str, Any]] = Field(description="The decision's cases (referral, contest) with their histories")
    final_decision: dict[str, Any] = Field(description="The final decision: the model's, a reviewer's, or pending")
    notice_withdrawn: bool = Field(description="A reviewer's final decision withdrew the model's notice")


class DecisionPage(_Out):
    applicant_id: str
    start: str
    end: str
    total: int
    page: int
    page_size: int
    decisions: list[DecisionOut] = Field(description="Newest first")


class ReplayOut(_Out):
    request_id: str
    model_version: str
    policy_version: str
    status: Literal["identical", "different", "not_replayable"]
    identical: bool
    differences: dict[str, dict[str, Any]]
    replayed: dict[str, Any]
    reasons_compared: bool
    error: str | None
    experiment_arm: str | None = None  # decided in an experiment's arm (model_version is the one that decided)


class LoggedOutcome(_Out):
    model_version: str | None
    decision: str | None
    probability_of_default: float | None


class RecourseOut(_Out):
    """What would change a logged decision, searched on the version served now (``model``)."""

    request_id: str
    logged: LoggedOutcome = Field(description="The decision as logged, by the version that made it")
    model: dict[str, Any] = Field(description="The served version that scored the alternatives")
    decision: Literal["approve", "review", "decline"] | None = Field(
        description="The served version's decision on the logged inputs (null: they cannot be scored again)"
    )
    recourse: list[dict[str, Any]] = Field(description="As POST /v1/predict?recourse=true answers")
    recourse_note: str | None
