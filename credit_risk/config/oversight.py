"""``model_config.yaml``: the people and records around a decision.

Adverse-action notices (who sends them and what they say), the audit trail (finding, replaying
and recording decisions), and human review (which decisions open a case, the reasons a
reviewer may give).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from credit_risk.config.base import _Frozen


class Lender(_Frozen):
    """A party named on an adverse-action notice (Regulation B, 12 CFR 1002.9(a)(2))."""

    name: str = Field(min_length=1, description="The name printed on the notice.")
    address: tuple[str, ...] = Field(min_length=1, description="The address, one line per item.")
    phone: str | None = Field(default=None, description="A phone number.")
    contact: str | None = Field(default=None, description="An email or web address for questions.")


EXAMPLE_LENDER = Lender(
    name="Example Community Lending Ltd.",
    address=("1 Market Street", "Springfield, ST 00000"),
    phone="+1 555 0100",
    contact="credit-decisions@example.invalid",
)
CFPB = Lender(name="Consumer Financial Protection Bureau", address=("1700 G Street NW", "Washington, DC 20552"))
ECOA_NOTICE = (
    "The Federal Equal Credit Opportunity Act prohibits creditors from discriminating against credit applicants "
    "on the basis of race, color, religion, national origin, sex, marital status, age (provided the applicant has "
    "the capacity to enter into a binding contract); because all or part of the applicant's income derives from "
    "any public assistance program; or because the applicant has in good faith exercised any right under the "
    "Consumer Credit Protection Act. The Federal agency that administers compliance with this law concerning "
    "this creditor is named below."
)


class NoticesConfig(_Frozen):
    """Adverse-action notices (Regulation B, 12 CFR 1002.9): who sends them, for which decisions, the texts."""

    decisions: tuple[Literal["decline", "review"], ...] = Field(
        default=("decline",), description="Decisions that get a notice; add review to send one for a referral too."
    )
    lender: Lender = Field(
        default=EXAMPLE_LENDER,
        description="The creditor (name, address, phone, contact); the default is an example: set your own.",
    )
    agency: Lender = Field(
        default=CFPB,
        description="The federal agency that administers compliance for this creditor (Regulation B appendix A).",
    )
    max_reasons: int = Field(
        default=4,
        ge=1,
        le=4,
        description="Principal reasons on a notice (Regulation B: more than four is not helpful).",
    )
    ecoa_notice: str = Field(default=ECOA_NOTICE, min_length=1, description="The ECOA anti-discrimination notice.")
    statement_of_action: str = Field(
        default="we are unable to approve your application for credit at this time",
        description="The action taken, as the notice words it.",
    )
    recourse: bool = Field(
        default=False,
        description="True: a notice also says what would have changed the decision (the auditor route's "
        "alternatives), when the version that decided is the one served.",
    )


class AuditConfig(_Frozen):
    """Finding, replaying and recording decisions (``GET /v1/decisions...``, ``mlflow run . -e replay``)."""

    index_path: Path | None = Field(
        default=None,
        description="SQLite index of the log's files; null: <prediction log dir>/../audit/decisions.sqlite.",
    )
    access_log: Path | None = Field(
        default=None, description="Who looked at which decision; null: <prediction log dir>/../audit/access.jsonl."
    )
    refresh_seconds: float = Field(
        default=2.0, ge=0, description="An unknown request id re-reads the log's new files at most this often."
    )
    page_size: int = Field(default=20, ge=1, le=500, description="Decisions per page of an applicant's list.")
    max_page_size: int = Field(default=200, ge=1, le=5000, description="The largest page_size a caller may ask.")
    policy_experiment: str = Field(
        default="credit-risk-policies",
        description="Each decision policy version, recorded the first time a service starts with it.",
    )
    replay_experiment: str = Field(default="credit-risk-replay", description="The MLflow experiment of replay runs.")
    probability_tolerance: float = Field(
        default=1e-6,
        ge=0,
        le=1e-3,
        description="Probabilities re-computed by another tree runtime (numpy vs XGBoost) agree to this; score, "
        "band, decision and reasons must be exactly equal.",
    )


class ReasonCode(_Frozen):
    """A reviewer's reason for a final decision (an override needs one)."""

    code: str = Field(
        min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_]*$", description="What the API takes and records."
    )
    label: str = Field(min_length=1, max_length=200, description="What reviewers and notices read.")
    adverse: bool = Field(
        default=False,
        description="A reason the applicant is told on a decline's notice (documents missing), or not (income "
        "verified).",
    )


DEFAULT_REASON_CODES = (
    ReasonCode(code="verified_income", label="Income verified"),
    ReasonCode(code="verified_employment", label="Employment verified"),
    ReasonCode(code="additional_information", label="Additional information received"),
    ReasonCode(code="policy_exception", label="Policy exception approved by a credit officer"),
    ReasonCode(code="documents_missing", label="Documents requested were not provided", adverse=True),
    ReasonCode(code="income_insufficient", label="Income insufficient for the amount requested", adverse=True),
    ReasonCode(code="unable_to_verify", label="Unable to verify the information given", adverse=True),
)


class ReviewConfig(_Frozen):
    """Human oversight (docs/oversight.md): which decisions open a case, the queue's due times, reasons."""

    decisions: tuple[Literal["review", "decline"], ...] = Field(
        default=("review",),
        description="Decisions that open a case for a reviewer (add decline: a person sees every one).",
    )
    database_url: str | None = Field(
        default=None,
        description="The case store's SQLAlchemy URL (postgresql+psycopg2://... for a team); null: SQLite beside "
        "the prediction log (<log dir>/../cases/cases.sqlite).",
    )
    sla_hours: float = Field(default=48.0, gt=0, description="A case is due this long after its decision.")
    claim_minutes: float = Field(
        default=30.0, gt=0, description="A reviewer's claim lapses after this: another reviewer may take the case."
    )
    reason_codes: tuple[ReasonCode, ...] = Field(
        default=DEFAULT_REASON_CODES,
        min_length=1,
        description="The reasons a reviewer may give (code, label, adverse).",
    )
    reconcile_seconds: float = Field(
        default=30.0, gt=0, description="How often each worker opens the cases of the decision log's new files."
    )
    page_size: int = Field(default=50, ge=1, le=500, description="The queue's default page size.")
    max_overdue_share: float = Field(
        default=0.10, ge=0, le=1, description="The monitor alerts when more of the waiting cases than this are overdue."
    )

    @model_validator(mode="after")
    def _codes_unique(self) -> ReviewConfig:
        codes = [reason.code for reason in self.reason_codes]
        if len(set(codes)) != len(codes):
            raise ValueError(f"review.reason_codes: codes must be unique, got {codes}")
        return self
