"""The decision record: one typed definition of what a decision holds and where each part goes.

:class:`DecisionRecord` is the one definition. Each of its fixed fields says, in its metadata, its
log column (Arrow type, whether it may be null), the key it has in the answer (``model.version``:
inside the answer's ``model`` object; none: the log only) and a one-line description. From it:

- the log's fixed columns, in order, around the feature schema's columns (``inputs`` marks where
  those go): :data:`LEADING_COLUMNS`, :data:`TRAILING_COLUMNS` and :data:`NOT_NULL`, which
  :mod:`credit_risk.decision_log.format` builds the Arrow schema from;
- the answer body and the log record of one decision, built in one place from one value
  (:meth:`DecisionRecord.to_answer`, :meth:`DecisionRecord.to_log`);
- the descriptions of the service's response model (``serving/schemas.py`` takes them from
  :func:`answer_description`) and the column table in docs/prediction-log.md.

Fields with neither a column nor an answer key (``experiment_mode``) steer how the two are built.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:  # types only: the log's readers and the converter process need neither model code nor numpy
    from credit_risk.decision import Reason
    from credit_risk.recourse import Alternative

LOG_SCHEMA_VERSION = 1

_META = "decision_record"


@dataclass(frozen=True, slots=True)
class RecordField:
    """One fixed field of the decision record: its log column (if any) and its answer key (if any)."""

    name: str  # the log column, and the attribute of DecisionRecord
    arrow: pa.DataType | None  # None: not a log column
    required: bool  # the column is never null
    answer: str | None  # the answer's key ("model.version": inside "model"); None: not in the answer
    description: str


def _fixed(
    description: str, *, arrow: pa.DataType | None = None, answer: str | None = None, required: bool = False
) -> dict[str, Any]:
    return {_META: (arrow, required, answer, description)}


_INPUTS = "inputs"  # the field whose place in the field order is where the feature schema's columns go


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionRecord:
    """One scored applicant: the answer they get and the row the log keeps, from the same values."""

    log_schema_version: int = field(
        default=LOG_SCHEMA_VERSION,
        init=False,
        metadata=_fixed("The log format's version (LOG_SCHEMA_VERSION)", arrow=pa.int16(), required=True),
    )
    request_id: str = field(
        metadata=_fixed(
            "The decision's id: the caller's X-Request-ID, or one made for it (a batch: <batch id>-<row>)",
            arrow=pa.string(),
            required=True,
            answer="request_id",
        )
    )
    batch_id: str | None = field(
        metadata=_fixed("The batch the applicant came in (null for a single call)", arrow=pa.string())
    )
    applicant_id: str | None = field(
        metadata=_fixed("The caller's id for the applicant (optional): outcomes may name it", arrow=pa.string())
    )
    scored_at: datetime = field(
        metadata=_fixed(
            "When the decision was made: UTC time, ISO 8601 in the answer",
            arrow=pa.timestamp("us", tz="UTC"),
            required=True,
            answer="scored_at",
        )
    )
    model_name: str = field(
        metadata=_fixed("The registered model's name", arrow=pa.string(), required=True, answer="model.name")
    )
    model_version: str = field(
        metadata=_fixed("The model version that decided", arrow=pa.string(), required=True, answer="model.version")
    )
    model_alias: str | None = field(
        metadata=_fixed("The alias followed; null when a version is pinned", answer="model.alias")
    )
    inputs: Mapping[str, Any]  # the applicant's validated fields (applicant_id among them): the schema's columns
    probability: float = field(
        metadata=_fixed(
            "The model's probability of default",
            arrow=pa.float64(),
            required=True,
            answer="probability_of_default",
        )
    )
    score: int = field(metadata=_fixed("Scorecard points: higher is lower risk", arrow=pa.int64(), answer="score"))
    risk_band: str = field(metadata=_fixed("The risk band of the score", arrow=pa.string(), answer="risk_band"))
    decision: str = field(
        metadata=_fixed("The decision answered: approve, review or decline", arrow=pa.string(), answer="decision")
    )
    decision_policy_version: str = field(
        metadata=_fixed(
            "The decision policy's version (decision.policy_version)",
            arrow=pa.string(),
            answer="decision_policy_version",
        )
    )
    reasons: tuple[Reason, ...] = field(
        metadata=_fixed(
            "At most decision.max_reasons, largest contribution first (the log keeps their codes)",
            arrow=pa.list_(pa.string()),
            answer="reasons",
        )
    )
    latency_ms: float = field(metadata=_fixed("Server-side time from arrival to decision", arrow=pa.float64()))
    model_decision: str | None = field(
        default=None,
        metadata=_fixed(
            "The model's own decision while automation is paused (the log: null when it referred anyway)",
            arrow=pa.string(),
            answer="automation.model_decision",
        ),
    )
    experiment_id: str | None = field(
        default=None,
        metadata=_fixed(
            "The champion/challenger experiment the applicant is in (GET /v1/experiments/{id})",
            arrow=pa.string(),
            answer="experiment.id",
        ),
    )
    experiment_arm: str | None = field(
        default=None,
        metadata=_fixed(
            "Whose decision this is, champion or challenger; `model` names its version",
            arrow=pa.string(),
            answer="experiment.arm",
        ),
    )
    experiment_mode: str | None = None  # split: the answer names the arm; shadow: only the log does
    shadow_version: str | None = field(
        default=None, metadata=_fixed("In a shadow: the challenger version that also scored", arrow=pa.string())
    )
    shadow_probability: float | None = field(
        default=None, metadata=_fixed("In a shadow: the challenger's probability of default", arrow=pa.float64())
    )
    shadow_score: int | None = field(
        default=None, metadata=_fixed("In a shadow: the challenger's score", arrow=pa.int64())
    )
    shadow_risk_band: str | None = field(
        default=None, metadata=_fixed("In a shadow: the challenger's risk band", arrow=pa.string())
    )
    shadow_decision: str | None = field(
        default=None, metadata=_fixed("In a shadow: the decision the challenger would have made", arrow=pa.string())
    )
    recourse: tuple[Alternative, ...] | None = field(
        default=None,
        metadata=_fixed(
            "With ?recourse=true: what would change the decision, cheapest first (empty: see the note)",
            answer="recourse",
        ),
    )
    recourse_note: str | None = field(
        default=None, metadata=_fixed("With ?recourse=true: why there is no alternative", answer="recourse_note")
    )
    paused: bool = field(
        default=False,
        metadata=_fixed("Automation is paused (the stop switch): the decision is a referral", answer="automation.mode"),
    )
    case: None = field(
        default=None,
        init=False,
        metadata=_fixed(
            "The case a referral opened for a human reviewer (named once the record is durable)", answer="case"
        ),
    )

    def to_answer(self) -> dict[str, Any]:
        """The body the applicant gets (``case`` is added once the record is durable and a case opened)."""
        answer: dict[str, Any] = {
            "request_id": self.request_id,
            "model": {"name": self.model_name, "version": self.model_version, "alias": self.model_alias},
            "probability_of_default": self.probability,
            "score": self.score,
            "risk_band": self.risk_band,
            "decision": self.decision,
            "decision_policy_version": self.decision_policy_version,
            "reasons": [
                {
                    "code": reason.code,
                    "field": reason.field,
                    "label": reason.label,
                    "value": reason.value,
                    "value_label": reason.value_label,
                    "contribution": reason.contribution,
                }
                for reason in self.reasons
            ],
            "scored_at": self.scored_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        if self.recourse is not None:
            answer["recourse"] = [alternative.to_json() for alternative in self.recourse]
            answer["recourse_note"] = self.recourse_note
        if self.paused:
            answer["automation"] = {"mode": "paused", "model_decision": self.model_decision or self.decision}
        if self.experiment_mode == "split":
            answer["experiment"] = {"id": self.experiment_id, "arm": self.experiment_arm}
        return answer

    def to_log(self) -> dict[str, Any]:
        """The log's record: the fixed columns around the applicant's fields (privacy is applied by the
        writer; ``log_schema_version`` is written by :func:`~credit_risk.decision_log.format.to_table`).
        Optional columns that are null are left out (they read as null), keeping the write-ahead line short."""
        record = {
            "request_id": self.request_id,
            "batch_id": self.batch_id,
            "applicant_id": self.applicant_id,
            "scored_at": self.scored_at,
            "model_name": self.model_name,
            "model_version": self.model_version,
            **self.inputs,
            "probability": self.probability,
            "score": self.score,
            "risk_band": self.risk_band,
            "decision": self.decision,
            "decision_policy_version": self.decision_policy_version,
            "reasons": [reason.code for reason in self.reasons],
            "latency_ms": self.latency_ms,
        }
        if self.model_decision is not None:
            record["model_decision"] = self.model_decision
        if self.experiment_id is not None:
            record["experiment_id"] = self.experiment_id
            record["experiment_arm"] = self.experiment_arm
        if self.shadow_version is not None:
            record["shadow_version"] = self.shadow_version
            record["shadow_probability"] = self.shadow_probability
            record["shadow_score"] = self.shadow_score
            record["shadow_risk_band"] = self.shadow_risk_band
            record["shadow_decision"] = self.shadow_decision
        return record


def _definition() -> tuple[tuple[RecordField, ...], tuple[RecordField, ...], tuple[RecordField, ...]]:
    """(leading columns, trailing columns, answer-only fields) from the dataclass, in field order."""
    leading: list[RecordField] = []
    trailing: list[RecordField] = []
    answer_only: list[RecordField] = []
    after_inputs = False
    for spec in dataclasses.fields(DecisionRecord):
        if spec.name == _INPUTS:
            after_inputs = True
        if _META not in spec.metadata:
            continue
        arrow, required, answer, description = spec.metadata[_META]
        entry = RecordField(spec.name, arrow, required, answer, description)
        if arrow is None:
            answer_only.append(entry)
        else:
            (trailing if after_inputs else leading).append(entry)
    return tuple(leading), tuple(trailing), tuple(answer_only)


LEADING_FIELDS, TRAILING_FIELDS, ANSWER_ONLY_FIELDS = _definition()
FIELDS: tuple[RecordField, ...] = LEADING_FIELDS + TRAILING_FIELDS + ANSWER_ONLY_FIELDS
COLUMN_FIELDS: tuple[RecordField, ...] = LEADING_FIELDS + TRAILING_FIELDS

# the log's fixed columns, in order: before and after the schema's fields
LEADING_COLUMNS: tuple[tuple[str, pa.DataType], ...] = tuple((f.name, f.arrow) for f in LEADING_FIELDS if f.arrow)
TRAILING_COLUMNS: tuple[tuple[str, pa.DataType], ...] = tuple((f.name, f.arrow) for f in TRAILING_FIELDS if f.arrow)
COLUMN_TYPES: Mapping[str, pa.DataType] = dict(LEADING_COLUMNS + TRAILING_COLUMNS)
NOT_NULL = frozenset(f.name for f in COLUMN_FIELDS if f.required)

# the objects of the answer that group several fields (``model.name``, ``model.version`` ...)
ANSWER_OBJECTS: Mapping[str, str] = {
    "model": "The model version that produced the answer",
    "experiment": "Only while a split experiment runs: its id and the applicant's arm",
    "automation": "Only while automation is paused (the stop switch): the decision is a referral",
}
_ANSWER_DESCRIPTIONS = {f.answer: f.description for f in FIELDS if f.answer is not None} | dict(ANSWER_OBJECTS)


def answer_description(key: str) -> str:
    """The description of an answer key (``score``, ``model.version``, ``automation``) for the response model."""
    return _ANSWER_DESCRIPTIONS[key]


def log_columns(*names: str) -> pa.Schema:
    """The named fixed columns, typed as the log writes them (a name that is not a column raises at once)."""
    unknown = [name for name in names if name not in COLUMN_TYPES]
    if unknown:
        raise KeyError(f"not columns of the decision log: {unknown}")
    return pa.schema([pa.field(name, COLUMN_TYPES[name]) for name in names])
