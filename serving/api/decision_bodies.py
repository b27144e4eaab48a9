"""A logged decision as the API shows it: inputs apart, reasons in the schema's words, the notice
(with what would have changed the decision), its outcome, its cases and the final decision."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow.dataset as ds
from sqlalchemy.exc import SQLAlchemyError

from credit_risk.audit import notices
from credit_risk.cases.final import final_decision, final_notice, notice_withdrawn
from credit_risk.decision_log.format import FIXED_COLUMNS
from credit_risk.decision_log.paths import resolve_log_dir
from credit_risk.outcomes.paths import resolve_outcomes_dir
from credit_risk.outcomes.table import SCHEMA as OUTCOME_SCHEMA
from credit_risk.outcomes.table import OutcomeTable
from credit_risk.schema import FeatureSchema
from serving.api.deps import Runtime
from serving.errors import NoModelError


def _schema_for(runtime: Runtime, version: str | None) -> FeatureSchema:
    """The deciding version's schema when it is the one served, else the project's."""
    served = runtime.holder.served
    return served.model.schema if served is not None and served.version == version else runtime.config.features


def _with_cases(runtime: Runtime, record: dict[str, Any], schema: FeatureSchema, body: dict[str, Any]) -> None:
    """The decision's case trail and final decision; the notice follows the final decision."""
    store = runtime.cases
    try:
        trail = store.for_decision(str(record["request_id"])) if store is not None else []
    except SQLAlchemyError as exc:  # without its cases the final decision is unknown: say so, never a 500
        raise NoModelError(f"the case store is unavailable: {str(exc).splitlines()[0][:200]}") from None
    final = final_decision(record, trail)
    body["cases"] = trail
    body["final_decision"] = final
    if final["by"] == "reviewer":  # else the model's notice stands (with what would change it, when asked)
        body["notice"] = final_notice(record, final, schema, runtime.config.model.notices, runtime.config.model.review)
    body["notice_withdrawn"] = notice_withdrawn(record, final, runtime.config.model.notices)


def notice_recourse(runtime: Runtime, record: dict[str, Any]) -> list[dict[str, Any]] | None:
    """What would have changed a logged decision, for its notice (``notices.recourse``): searched on the
    served version only when it is the version that decided (else the notice goes without it)."""
    served = runtime.holder.served
    if not runtime.config.model.notices.recourse or served is None or served.recourse is None:
        return None
    if served.version != record.get("model_version"):
        return None
    return served.recourse.search_logged(record)[1].to_json()["recourse"]


def decision_body(
    runtime: Runtime, record: dict[str, Any], *, with_recourse: bool = False, with_cases: bool = True
) -> dict[str, Any]:
    """A logged row as the API shows it: inputs apart, reasons in the schema's words, the notice (with
    what would have changed the decision when ``with_recourse`` and ``notices.recourse``); with its
    cases, the final decision and the notice that follows it."""
    schema = _schema_for(runtime, record.get("model_version"))
    by_code = {spec.reason_code: spec for spec in schema.fields}
    reasons = []
    for code in record.get("reasons") or []:
        spec = by_code.get(code)
        value = record.get(spec.name) if spec else None
        reasons.append(
            {
                "code": code,
                "field": spec.name if spec else None,
                "label": spec.label if spec else code,
                "value": value,
                "value_label": spec.describe_value(value) if spec and value is not None else None,
            }
        )
    scored_at: datetime = record["scored_at"]
    inputs = {k: v for k, v in record.items() if k not in FIXED_COLUMNS and k not in {"applicant_id", "date"}}
    body = {
        "request_id": record["request_id"],
        "batch_id": record.get("batch_id"),
        "applicant_id": record.get("applicant_id"),
        "scored_at": scored_at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "model": {"name": record.get("model_name"), "version": record.get("model_version")},
        "decision_policy_version": record.get("decision_policy_version"),
        "inputs": inputs,
        "probability_of_default": record["probability"],
        "score": record.get("score"),
        "risk_band": record.get("risk_band"),
        "decision": record.get("decision"),
        "reasons": reasons,
        "latency_ms": record.get("latency_ms"),
        "model_decision": record.get("model_decision") or record.get("decision"),
        "notice": notices.build_notice(
            record,
            schema,
            runtime.config.model.notices,
            recourse=notice_recourse(runtime, record) if with_recourse else None,
        ),
        "outcome": outcome_of(runtime, record["request_id"]),
    }
    if with_cases:
        _with_cases(runtime, record, schema, body)
    return body


def outcome_of(runtime: Runtime, request_id: str) -> dict[str, Any] | None:
    """The decision's current outcome (the latest load wins), or None when none is known yet.

    The outcomes table is read with a filter on the request id (one column per file is scanned:
    outcomes are far fewer files than decisions, one per load)."""
    folder = resolve_outcomes_dir(runtime.config, resolve_log_dir(runtime.config, runtime.settings))
    table = OutcomeTable(folder)
    files = table.files()
    if not files:
        return None
    rows = ds.dataset([str(f) for f in files], schema=OUTCOME_SCHEMA, format="parquet").to_table(
        filter=ds.field("request_id") == request_id
    )
    if rows.num_rows == 0:
        return None
    latest = max(rows.to_pylist(), key=lambda row: (row["loaded_at"], row["load_id"]))
    return {
        "outcome": latest["outcome"],
        "label": latest["label"],
        "observed_at": latest["observed_at"].isoformat(),
        "loaded_at": latest["loaded_at"].isoformat(),
    }
