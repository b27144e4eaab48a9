"""The final decision of a logged decision, from its cases, and the notice that follows it.

The log's record is never changed: the model's decision stays as it was made (replay
reproduces it), and the final decision is read beside it from the cases. A decided referral
gives the final decision; a decided contest re-decides it; an open case leaves it pending.
The adverse-action notice follows the final decision: a human decline gets one (with the
reviewer's reason first when it is one the applicant is told), a human approval withdraws the
model's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from credit_risk.audit import notices
from credit_risk.cases.policy import reviewer_reason
from credit_risk.config import NoticesConfig, ReviewConfig
from credit_risk.schema import FeatureSchema


def final_decision(record: Mapping[str, Any], cases: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``decision`` (approve, review, decline), ``by`` (model, reviewer, pending) and the deciding case."""
    final: dict[str, Any] = {"decision": record.get("decision"), "by": "model", "case_id": None}
    for case in cases:  # oldest first: a decided contest comes after the referral it re-decides
        if case["state"] == "decided":
            final = {
                "decision": case["final_decision"],
                "by": "reviewer",
                "case_id": case["id"],
                "kind": case["kind"],
                "decided_by": case["decided_by"],
                "decided_at": case["decided_at"],
                "reason_code": case["reason_code"],
                "override": case["override"],
            }
        elif case["state"] in ("open", "claimed"):
            final = {**final, "by": "pending", "case_id": case["id"], "kind": case["kind"]}
    final["model_decision"] = record.get("model_decision") or record.get("decision")
    return final


def final_notice(
    record: Mapping[str, Any],
    final: Mapping[str, Any],
    schema: FeatureSchema,
    notice_config: NoticesConfig,
    review: ReviewConfig,
) -> dict[str, Any] | None:
    """The notice the final decision calls for (None: none, or withdrawn by a human approval)."""
    if final["by"] != "reviewer":
        return notices.build_notice(record, schema, notice_config)
    decided = {**record, "decision": final["decision"]}
    notice = notices.build_notice(decided, schema, notice_config)
    if notice is None:
        return None
    notice["decided_by"] = "a credit officer, after reviewing the model's assessment"
    reason = reviewer_reason(final.get("reason_code"), review)
    if reason is not None:
        told = {"code": reason.code, "field": None, "label": reason.label, "value": None, "text": reason.label}
        notice["principal_reasons"] = [told, *notice["principal_reasons"]][: notice_config.max_reasons]
    return notice


def notice_withdrawn(record: Mapping[str, Any], final: Mapping[str, Any], notice_config: NoticesConfig) -> bool:
    """The model's decision needed a notice and a reviewer's final decision does not."""
    return (
        final["by"] == "reviewer"
        and notices.needs_notice(record.get("decision"), notice_config)
        and not notices.needs_notice(final["decision"], notice_config)
    )
