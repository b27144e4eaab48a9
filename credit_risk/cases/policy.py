"""The rules of human oversight, apart from any storage: overrides, reason codes, the stop switch.

A reviewer's final decision that differs from the model's recommendation is an override
(high-side: approving what the model would decline or refer; low-side: declining what it would
approve) and needs a reason code from ``review.reason_codes``. A decline needs principal reasons
for its notice: the model's, and the reviewer's reason when that reason is one the applicant is
told (``adverse``). While automation is paused (Art. 14(4)(e)), every decision the model would
make alone is referred instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from credit_risk.config import ReasonCode, ReviewConfig
from credit_risk.lifecycle.ledger import Controls

AUTOMATION = "automation"  # the stop switch's control name in the ledger
MODES = ("on", "paused")
REFERRED = "review"


class CaseRuleError(ValueError):
    """A final decision the rules refuse; ``field`` names the part of the request at fault."""

    def __init__(self, field: str, message: str, kind: str) -> None:
        super().__init__(message)
        self.field = field
        self.kind = kind


def automation_mode(controls: Controls) -> str:
    """``on`` or ``paused``: the stop switch's latest entry in the ledger (on when never set)."""
    event = controls.get(AUTOMATION)
    mode = event.figures.get("mode") if event is not None else None
    return mode if mode in MODES else "on"


def referred_when_paused(decision: str, paused: bool) -> str:
    """The decision answered: the model's, or a referral while automation is paused."""
    return REFERRED if paused else decision


def opens_case(decision: str | None, config: ReviewConfig) -> bool:
    return decision in config.decisions


def recommendation(case: dict[str, Any]) -> str:
    """What the model recommended for a case's decision (before any pause)."""
    return str(case.get("model_decision") or case.get("decision") or REFERRED)


def is_override(model_decision: str, final: str) -> bool:
    """A final decision differing from the model's own: a referral is a question, not an answer."""
    return model_decision != REFERRED and model_decision != final


@dataclass(frozen=True)
class FinalDecision:
    decision: str
    reason_code: str | None
    note: str | None
    override: bool


def check_final(
    case: dict[str, Any], decision: str, reason_code: str | None, note: str | None, config: ReviewConfig
) -> FinalDecision:
    """The reviewer's decision if the rules allow it, else :class:`CaseRuleError` naming the field."""
    codes = {reason.code: reason for reason in config.reason_codes}
    if reason_code is not None and reason_code not in codes:
        raise CaseRuleError(
            "reason_code",
            f"unknown reason code {reason_code!r}; allowed: {', '.join(codes)}",
            "enum",
        )
    model_decision = recommendation(case)
    override = is_override(model_decision, decision)
    if override and reason_code is None:
        raise CaseRuleError(
            "reason_code",
            f"the model recommended {model_decision}: a {decision} overrides it and needs a reason code "
            f"(one of {', '.join(codes)})",
            "missing",
        )
    if decision == "decline" and not case.get("reasons") and not (reason_code and codes[reason_code].adverse):
        adverse = [reason.code for reason in config.reason_codes if reason.adverse]
        raise CaseRuleError(
            "reason_code",
            "a decline needs principal reasons for its notice and the model gave none: "
            f"choose a reason the applicant is told ({', '.join(adverse)})",
            "missing",
        )
    return FinalDecision(decision=decision, reason_code=reason_code, note=note or None, override=override)


def reviewer_reason(reason_code: str | None, config: ReviewConfig) -> ReasonCode | None:
    """The reviewer's reason when it goes on a decline's notice."""
    for reason in config.reason_codes:
        if reason.code == reason_code and reason.adverse:
            return reason
    return None


def reason_labels(config: ReviewConfig) -> list[dict[str, Any]]:
    return [reason.model_dump(mode="json") for reason in config.reason_codes]


def model_reasons(codes: Sequence[str] | None) -> list[str]:
    return [str(code) for code in codes or ()]
