"""The decision record: one typed definition of what a decision holds and where each part goes.

:class:`DecisionRecord` is the one definition. Each of its fields says, in its annotation, its log
column (Arrow type, whether it may be null), the key it has in the answer (``model.version``:
inside the answer's ``model`` object; none: the log only) and a one-line description. With the
two entries that are not values of a decision (:data:`FORMAT_VERSION`, the log's first column, and
:data:`CASE`, which the answer gets once a case opens) it gives:

- the log's fixed columns, in order, around the feature schema's columns (``inputs`` marks where
  those go): :data:`LEADING_COLUMNS`, :data:`TRAILING_COLUMNS` and :data:`NOT_NULL`, which
  :mod:`credit_risk.decision_log.format` builds the Arrow schema from;
- the answer body and the log record of one decision, built in one place from one value
  (:meth:`DecisionRecord.to_answer`, :meth:`DecisionRecord.to_log`);
- the descriptions of the service's response model (``serving/schemas.py`` takes them from
  :func:`answer_description`) and docs/reference/decision-record.md (scripts/docs_reference.py).

A field with neither (``experiment_mode``) steers how the two are built. The record is a
``NamedTuple``: immutable like a frozen dataclass, and built in a fifth of its time, which
matters on the scoring hot path (one per applicant).
"""

# no ``from __future__ import annotations``: the fields' Annotated specs are read at import
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import pyarrow as pa

if TYPE_CHECKING:  # types only: the log's readers and the converter process need neither model code nor numpy
    from credit_risk.decision import Reason
    from credit_risk.recourse import Alternative

LOG_SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Spec:
    """Where one field of the decision record goes: its log column (if any) and its answer key (if any)."""

    arrow: pa.DataType | None  # None: not a log column
    required: bool  # the column is never null
    answer: str | None  # the answer's key ("model.version": inside "model"); None: not in the answer
    description: str


@dataclass(frozen=True, slots=True)
class RecordField:
    """One fixed field of the decision record, named."""

    name: str  # the log column, and the attribute of DecisionRecord
    arrow: pa.DataType | None
    required: bool
    answer: str | None
    description: str


def column(description: str, arrow: pa.DataType, *, answer: str | None = None, required: bool = False) -> Spec:
    """A log column (``answer``: also in the answer, under that key)."""
    return Spec(arrow, required, answer, description)


def answered(description: str, answer: str) -> Spec:
    """A part of the answer that the log does not keep."""
    return Spec(None, False, answer, description)


_INPUTS = "inputs"  # the field whose place in the field order is where the feature schema's columns go


class DecisionRecord(NamedTuple):
    """One scored applicant: the answer they get and the row the log keeps, from the same values."""

    request_id: Annotated[
        str,
        column(
            "The decision's id: the caller's X-Request-ID, or one made for it (a batch: <batch id>-<row>)",
            pa.string(),
            answer="request_id",
            required=True,
        ),
    ]
    batch_id: Annotated[str | None, column("The batch the applicant came in (null for a single call)", pa.string())]
    applicant_id: Annotated[
        str | None, column("The caller's id for the applicant (optional): outcomes may name it", pa.string())
    ]
    scored_at: Annotated[
        datetime,
        column(
            "When the decision was made: UTC time, ISO 8601 in the answer",
            pa.timestamp("us", tz="UTC"),
            answer="scored_at",
            required=True,
        ),
    ]
    model_name: Annotated[str, column("The registered model's name", pa.string(), answer="model.name", required=True)]
    model_version: Annotated[
        str, column("The model version that decided", pa.string(), answer="model.version", required=True)
    ]
    model_alias: Annotated[str | None, answered("The alias followed; null when a version is pinned", "model.alias")]
    inputs: Mapping[str, Any]  # the applicant's validated fields (applicant_id among them): the schema's columns
    probability: Annotated[
        float,
        column("The model's probability of default", pa.float64(), answer="probability_of_default", required=True),
    ]
    score: Annotated[int, column("Scorecard points: higher is lower risk", pa.int64(), answer="score")]
    risk_band: Annotated[str, column("The risk band of the score", pa.string(), answer="risk_band")]
    decision: Annotated[
        str, column("The decision answered: approve, review or decline", pa.string(), answer="decision")
    ]
    decision_policy_version: Annotated[
        str,
        column(
            "The decision policy's version (decision.policy_version)", pa.string(), answer="decision_policy_version"
        ),
    ]
    reasons: Annotated[
        tuple["Reason", ...],
        column(
            "At most decision.max_reasons, largest contribution first (the log keeps their codes)",
            pa.list_(pa.string()),
            answer="reasons",
        ),
    ]
    latency_ms: Annotated[float, column("Server-side time from arrival to decision", pa.float64())]
    model_decision: Annotated[
        str | None,
        column(
            "The model's own decision while automation is paused (the log: null when it referred anyway)",
            pa.string(),
            answer="automation.model_decision",
        ),
    ] = None
    experiment_id: Annotated[
        str | None,
        column(
            "The champion/challenger experiment the applicant is in (GET /v1/experiments/{id})",
            pa.string(),
            answer="experiment.id",
        ),
    ] = None
    experiment_arm: Annotated[
        str | None,
        column(
            "Whose decision this is, champion or challenger; `model` names its version",
            pa.string(),
            answer="experiment.arm",
        ),
    ] = None
    experiment_mode: str | None = None  # split: the answer names the arm; shadow: only the log does
    shadow_version: Annotated[
        str | None, column("In a shadow: the challenger version that also scored", pa.string())
    ] = None
    shadow_probability: Annotated[
        float | None, column("In a shadow: the challenger's probability of default", pa.float64())
    ] = None
    shadow_score: Annotated[int | None, column("In a shadow: the challenger's score", pa.int64())] = None
    shadow_risk_band: Annotated[str | None, column("In a shadow: the challenger's risk band", pa.string())] = None
    shadow_decision: Annotated[
        str | None, column("In a shadow: the decision the challenger would have made", pa.string())
    ] = None
    recourse: Annotated[
        tuple["Alternative", ...] | None,
        answered(
            "With ?recourse=true: what would change the decision, cheapest first (empty: see the note)", "recourse"
        ),
    ] = None
    recourse_note: Annotated[
        str | None, answered("With ?recourse=true: why there is no alternative", "recourse_note")
    ] = None
    paused: Annotated[
        bool, answered("Automation is paused (the stop switch): the decision is a referral", "automation.mode")
    ] = False

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


# the log's first column: the format's version, a constant of the file (format.to_table writes it)
FORMAT_VERSION = RecordField(
    "log_schema_version", pa.int16(), True, None, "The log format's version (LOG_SCHEMA_VERSION)"
)
# the answer's last part: a referral's case, named once the record is durable (serving/api/cases.py)
CASE = RecordField(
    "case", None, False, "case", "The case a referral opened for a human reviewer (named once the record is durable)"
)


def _definition() -> tuple[tuple[RecordField, ...], tuple[RecordField, ...], tuple[RecordField, ...]]:
    """(leading columns, trailing columns, answer-only fields), in the record's field order."""
    leading: list[RecordField] = [FORMAT_VERSION]
    trailing: list[RecordField] = []
    answer_only: list[RecordField] = []
    after_inputs = False
    for name, annotation in DecisionRecord.__annotations__.items():
        after_inputs = after_inputs or name == _INPUTS
        specs = [m for m in getattr(annotation, "__metadata__", ()) if isinstance(m, Spec)]
        if typing.get_origin(annotation) is not Annotated or not specs:
            continue
        spec = specs[0]
        entry = RecordField(name, spec.arrow, spec.required, spec.answer, spec.description)
        if spec.arrow is None:
            answer_only.append(entry)
        else:
            (trailing if after_inputs else leading).append(entry)
    return tuple(leading), tuple(trailing), (*answer_only, CASE)


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
