"""Adverse-action notices (Regulation B, 12 CFR 1002.9): JSON from a logged decision, and a printable PDF.

A notice states the action taken, the creditor's name and address, the ECOA anti-discrimination
notice with the federal agency that supervises the creditor, the decision date, and the specific
principal reasons: at most four, in the feature schema's own words (the field's label, the
applicant's value as the schema describes it, and the field's description), largest first, as
the model weighed them (TreeSHAP, the same reasons the decision logged). The PDF is laid out by
fpdf2 from the JSON, so both say the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from credit_risk.config import NoticesConfig
from credit_risk.schema import FeatureSchema

NOTICE_VERSION = 1


def needs_notice(decision: str | None, config: NoticesConfig) -> bool:
    return decision in config.decisions


def principal_reasons(record: Mapping[str, Any], schema: FeatureSchema, *, limit: int) -> list[dict[str, Any]]:
    """The logged reason codes as the schema words them, largest first, at most ``limit``."""
    by_code = {spec.reason_code: spec for spec in schema.fields}
    out = []
    for code in list(record.get("reasons") or [])[:limit]:
        spec = by_code.get(code)
        if spec is None:
            out.append({"code": code, "field": None, "label": code, "value": None, "text": code})
            continue
        value = record.get(spec.name)
        value_label = spec.describe_value(value) if value is not None else None
        text = f"{spec.label}: {value_label}" if value_label is not None else spec.label
        out.append(
            {
                "code": code,
                "field": spec.name,
                "label": spec.label,
                "value": value,
                "value_label": value_label,
                "description": spec.description,
                "text": text,
            }
        )
    return out


def build_notice(
    record: Mapping[str, Any],
    schema: FeatureSchema,
    config: NoticesConfig,
    *,
    recourse: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """The notice for a logged decision, or None when its decision needs none; with ``notices.recourse``
    and the decision's ``recourse`` (alternatives as the API gives them), what would have changed it."""
    decision = record.get("decision")
    if not needs_notice(decision, config):
        return None
    scored_at = record["scored_at"]
    if isinstance(scored_at, str):
        scored_at = datetime.fromisoformat(scored_at.replace("Z", "+00:00"))
    action = "referred for review by a credit officer" if decision == "review" else config.statement_of_action
    return {
        "notice_version": NOTICE_VERSION,
        "kind": "adverse_action",
        "request_id": record["request_id"],
        "decision": decision,
        "decision_date": scored_at.astimezone(UTC).date().isoformat(),
        "action_taken": action,
        "principal_reasons": principal_reasons(record, schema, limit=config.max_reasons),
        "creditor": config.lender.model_dump(mode="json"),
        "ecoa_notice": config.ecoa_notice,
        "supervising_agency": config.agency.model_dump(mode="json"),
        "model": {"name": record.get("model_name"), "version": record.get("model_version")},
        "decision_policy_version": record.get("decision_policy_version"),
        # decided in a champion/challenger experiment: its id and the arm (the version above decided)
        "experiment": (
            {"id": record["experiment_id"], "arm": record.get("experiment_arm")}
            if record.get("experiment_id")
            else None
        ),
        **(
            {"recourse": [{"decision": a["decision"], "summary": a["summary"]} for a in recourse]}
            if config.recourse and recourse
            else {}
        ),
    }


def _latin1(text: Any) -> str:
    """The PDF's core fonts are Latin-1: anything else is replaced, never an error."""
    return str(text).encode("latin-1", "replace").decode("latin-1")


def render_pdf(notice: Mapping[str, Any]) -> bytes:
    """A one-page printable notice from the JSON notice."""
    # imported here: every service process imports this module, few print a notice (fpdf2 and the
    # cryptography it imports take 0.36 s of a service's start)
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(f"Notice of action taken - {notice['request_id']}"))
    pdf.set_author(_latin1(notice["creditor"]["name"]))
    pdf.set_creation_date(datetime(2000, 1, 1, tzinfo=UTC))  # the same notice gives the same bytes
    pdf.add_page()
    pdf.set_margins(20, 20, 20)
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def line(text: str, *, size: float = 10, style: str = "", gap: float = 1.5) -> None:
        pdf.set_font("Helvetica", style=style, size=size)
        pdf.multi_cell(width, size * 0.5, _latin1(text), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    creditor = notice["creditor"]
    line(creditor["name"], size=13, style="B", gap=0.5)
    for part in creditor["address"]:
        line(part, gap=0.2)
    if creditor.get("phone") or creditor.get("contact"):
        line(" / ".join(x for x in (creditor.get("phone"), creditor.get("contact")) if x), gap=0.2)
    pdf.ln(6)
    line(
        "Statement of Credit Denial, Termination or Change"
        if notice["decision"] == "decline"
        else "Notice of Action Taken",
        size=14,
        style="B",
    )
    line(f"Date of decision: {notice['decision_date']}", gap=0.2)
    line(f"Application reference: {notice['request_id']}", gap=4)
    line(f"Thank you for your application. After careful review, {notice['action_taken']}.")
    line("Principal reason(s) for this action:", style="B", gap=1)
    reasons = notice["principal_reasons"]
    if reasons:
        for number, reason in enumerate(reasons, start=1):
            line(f"{number}. {reason['text']}", gap=0.5)
            if reason.get("description"):
                line(f"    ({reason['description']})", size=8.5, gap=1.5)
    else:
        line(
            "You may request the specific reasons within 60 days of this notice by contacting us at the address above."
        )
    alternatives = notice.get("recourse") or []
    if alternatives:
        pdf.ln(2)
        line("What would have changed the decision:", style="B", gap=1)
        words = {"approve": "Approved", "review": "Referred for review"}
        for alternative in alternatives:
            word = words.get(alternative["decision"], alternative["decision"])
            line(f"- {word} with: {alternative['summary']}", gap=0.5)
    pdf.ln(4)
    line("Notice", style="B", gap=1)
    line(notice["ecoa_notice"], size=9)
    agency = notice["supervising_agency"]
    line(agency["name"], size=9, style="B", gap=0.2)
    for part in agency["address"]:
        line(part, size=9, gap=0.2)
    pdf.ln(6)
    model = notice.get("model") or {}
    line(
        f"Decision made with model {model.get('name')} version {model.get('version')} under decision policy "
        f"{notice.get('decision_policy_version')}.",
        size=7.5,
    )
    return bytes(pdf.output())
