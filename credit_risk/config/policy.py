"""``model_config.yaml``: the model policy and the decision policy.

Which model is registered and served, how its probability becomes a score, a risk band and a
decision, what a challenger must pass to be promoted, how experiments split applicants, and how
far the search for what would change a decision goes.
"""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from credit_risk.config.base import _Frozen


class RegistryConfig(_Frozen):
    """Where models are registered and which alias is served."""

    model_name: str = Field(default="credit-risk", min_length=1, description="The registered model's name.")
    experiment: str = Field(default="credit-risk", min_length=1, description="The MLflow experiment of training runs.")
    serving_alias: str = Field(default="production", min_length=1, description="The alias the service follows.")
    challenger_alias: str = Field(
        default="challenger", min_length=1, description="The alias given to every newly registered version."
    )
    pinned_version: int | None = Field(
        default=None, ge=1, description="Emergency pin: serve this version and ignore the alias."
    )


class DecisionPolicy(_Frozen):
    """The decision policy, versioned apart from the model."""

    policy_version: str = Field(
        default="2026-11-24.1",
        min_length=1,
        description="The policy's own version; one version string always means one policy (recorded in MLflow).",
    )
    approve_below: float = Field(
        default=0.1667,
        gt=0,
        lt=1,
        description="P(default) below which an application is approved. 1/6 is the cost-optimal cut-off under "
        "the data set's cost matrix (a bad loan accepted costs 5, a good one refused costs 1); evaluation, "
        "fairness and promotion use it too.",
    )
    decline_at_or_above: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="P(default) from which an application is declined; between the two: review.",
    )
    max_reasons: int = Field(
        default=4, ge=1, le=10, description="Reasons per decision (Regulation B: more than four is not helpful)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> DecisionPolicy:
        if self.decline_at_or_above < self.approve_below:
            raise ValueError("decline_at_or_above must be >= approve_below")
        return self


class ScorecardConfig(_Frozen):
    """Scorecard scaling: Score = Offset + Factor * ln(good:bad odds), Factor = PDO / ln 2."""

    points_at_reference_odds: float = Field(default=600, description="The score at the reference odds.")
    reference_odds: float = Field(default=50, gt=0, description="The reference good:bad odds.")
    points_to_double_odds: float = Field(default=20, gt=0, description="Points to double the odds (PDO).")

    @property
    def factor(self) -> float:
        return self.points_to_double_odds / math.log(2)

    @property
    def offset(self) -> float:
        return self.points_at_reference_odds - self.factor * math.log(self.reference_odds)


class RiskBand(_Frozen):
    """One risk band: the probabilities up to ``max_probability`` (after the previous band's)."""

    name: str = Field(min_length=1, description="The band's name.")
    max_probability: float = Field(gt=0, le=1, description="The band's upper P(default).")


DEFAULT_RISK_BANDS = tuple(
    RiskBand(name=name, max_probability=edge)
    for name, edge in (("A", 0.05), ("B", 0.10), ("C", 0.1667), ("D", 0.30), ("E", 0.50), ("F", 1.0))
)


class PromotionGates(_Frozen):
    """Champion/challenger gates, on the same holdout for both models."""

    min_auc: float = Field(default=0.70, ge=0, le=1, description="Minimum holdout ROC-AUC of the challenger.")
    max_auc_drop: float = Field(
        default=0.02, ge=0, le=1, description="Largest ROC-AUC drop allowed against the champion."
    )
    min_disparate_impact: float = Field(
        default=0.80, ge=0, le=1, description="Minimum disparate-impact ratio per protected attribute."
    )
    max_brier: float = Field(default=0.20, ge=0, le=1, description="Maximum holdout Brier score.")
    # a promotion that passes the gates waits for a second person with the approver role (SR 11-7)
    require_approval: bool | None = Field(
        default=None,
        description="A second person with the approver role approves each promotion; null: on exactly when "
        "CREDIT_RISK_APPROVER_TOKEN is configured.",
    )
    approval_hours: float = Field(default=72.0, gt=0, description="A pending promotion request expires after this.")


class ExperimentsConfig(_Frozen):
    """Champion/challenger experiments (``POST /v1/admin/experiments``, ``mlflow run . -e experiment``)."""

    max_share: float = Field(default=0.5, gt=0, le=1, description="The largest challenger share a split may take.")
    min_per_arm: int = Field(default=100, ge=1, description="Fewer applicants in an arm: not yet enough to tell.")
    min_outcomes_per_arm: int = Field(
        default=50, ge=1, description="Fewer matured outcomes in an arm: no verdict on outcomes."
    )
    srm_p_value: float = Field(
        default=0.001, gt=0, lt=1, description="A chi-square p below this is a sample-ratio mismatch."
    )
    confidence: float = Field(default=0.95, gt=0.5, lt=1, description="The confidence of every interval.")
    bootstrap_rounds: int = Field(
        default=400, ge=50, le=10_000, description="Resamples for realized AUC and bad rate intervals."
    )
    shadow_reasons: bool = Field(
        default=False, description="Compute the challenger's reasons in a shadow (TreeSHAP per applicant)."
    )
    experiment: str = Field(
        default="credit-risk-experiments", description="The MLflow experiment of the report job's runs."
    )


class RecourseConfig(_Frozen):
    """What would change the decision: the search's limits and the cost of changing each field.

    A change costs the field's weight (``costs``, default 1.0) times how far it moves: the share of the
    applicant's own value for a plain number (15,000 to 9,000 DM: 0.4), steps over the scale's length
    for an ordered category or a coded number. Alternatives are ranked by their summed cost.
    """

    max_changes: int = Field(default=2, ge=1, le=3, description="Fields changed in one alternative.")
    max_alternatives: int = Field(default=3, ge=1, le=10, description="Alternatives returned, cheapest first.")
    costs: dict[str, float] = Field(
        default_factory=dict,
        description="Weight of a change per field (> 0; a field the schema lacks is refused); unnamed fields: 1.0.",
    )
    values_per_field: int = Field(
        default=12, ge=2, le=64, description="A field's values tried in combinations (its strongest kept)."
    )

    @model_validator(mode="after")
    def _positive(self) -> RecourseConfig:
        bad = sorted(name for name, cost in self.costs.items() if not cost > 0)
        if bad:
            raise ValueError(f"recourse.costs must be positive: {', '.join(bad)}")
        return self

    def cost_of(self, field: str) -> float:
        return float(self.costs.get(field, 1.0))
