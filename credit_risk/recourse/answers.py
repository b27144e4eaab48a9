"""What a recourse search answers: alternatives, each a set of changes, in the schema's words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Change:
    field: str
    label: str
    from_value: Any
    to_value: Any
    from_label: str
    to_label: str

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "label": self.label,
            "from": self.from_value,
            "to": self.to_value,
            "from_label": self.from_label,
            "to_label": self.to_label,
        }


@dataclass(frozen=True, slots=True)
class Alternative:
    changes: tuple[Change, ...]
    decision: str
    probability: float
    cost: float

    @property
    def summary(self) -> str:
        """The changes in the schema's words: "Credit amount (DM) 15,000 to 9,500; Loan duration ... 60 to 36"."""
        return "; ".join(f"{c.label} {c.from_label} to {c.to_label}" for c in self.changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": [c.to_json() for c in self.changes],
            "decision": self.decision,
            "probability_of_default": self.probability,
            "cost": round(self.cost, 6),
            "summary": self.summary,
        }


@dataclass(frozen=True, slots=True)
class RecourseAnswer:
    alternatives: tuple[Alternative, ...]
    note: str | None

    def to_json(self) -> dict[str, Any]:
        return {"recourse": [a.to_json() for a in self.alternatives], "recourse_note": self.note}
