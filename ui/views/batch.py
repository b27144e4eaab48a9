"""Batch: upload a CSV of applicants, check every row, score the good ones through the API."""

from __future__ import annotations

import hashlib
import io

import pandas as pd
import streamlit as st

from credit_risk.schema import FeatureSchema
from ui.api_client import ApiError, RequestRejectedError
from ui.context import UIContext, current, show_api_error
from ui.present import CheckedUpload, check_upload, chunks, results_frame, template_frame

_RESULTS_KEY = "batch.results"


def _read_csv(data: bytes, max_rows: int) -> pd.DataFrame | None:
    """All cells as text (the schema check converts them), or None with a message on the page."""
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, nrows=max_rows + 1)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        st.error(f"**This file cannot be read as CSV**: {exc}")
        return None
    if len(frame) > max_rows:
        st.error(f"**The file has more than {max_rows:,} rows**, the most the UI takes in one upload.")
        return None
    if frame.empty:
        st.warning("The file has a header but no applicants.")
        return None
    return frame


def _show_check(checked: CheckedUpload, total: int) -> None:
    if checked.ignored_columns:
        st.info(f"Columns not in the schema are ignored: {', '.join(checked.ignored_columns)}")
    good, bad = len(checked.records), len(checked.bad_rows)
    columns = st.columns(3)
    columns[0].metric("Rows", total)
    columns[1].metric("Valid", good)
    columns[2].metric("With errors", bad)
    if checked.problems:
        st.error(f"**{bad} row(s) break the schema** and will not be scored. Row numbers count data rows from 1.")
        st.dataframe(
            pd.DataFrame([p.__dict__ for p in checked.problems]).rename(columns={"rule": "problem"}),
            hide_index=True,
        )


def _file_row(checked: CheckedUpload, offset: int, row_in_chunk: int | None) -> str:
    """The file row of a row the service names by its index within a chunk."""
    if row_in_chunk is None or not 0 <= offset + row_in_chunk < len(checked.record_rows):
        return "?"
    return str(checked.record_rows[offset + row_in_chunk])


def _score(context: UIContext, checked: CheckedUpload) -> pd.DataFrame | None:
    """Score the valid rows in chunks with a progress bar; None (and a message) if the service fails."""
    results = []
    progress = st.progress(0.0, text="Scoring...")
    for offset, piece in chunks(checked.records, max_items=context.batch_chunk_size, max_bytes=context.max_body_bytes):
        try:
            answer = context.client.predict_batch(piece)
        except RequestRejectedError as exc:
            progress.empty()
            # Rows in the service's answer count from 0 within the chunk: report them as file rows.
            lines = [f"- row {_file_row(checked, offset, p.row)}, {p.field}: {p.message}" for p in exc.problems]
            st.error("**The service refused some rows**:\n\n" + ("\n".join(lines) or str(exc)))
            return None
        except ApiError as exc:
            progress.empty()
            show_api_error(exc, what="score this file")
            return None
        results.extend(answer.get("results", []))
        done = min(offset + len(piece), len(checked.records))
        progress.progress(done / len(checked.records), text=f"Scored {done:,} of {len(checked.records):,}")
    progress.empty()
    return results_frame(checked.record_rows, checked.records, results)


def _show_results(frame: pd.DataFrame) -> None:
    st.subheader("Results")
    mix = frame["decision"].value_counts()
    columns = st.columns(4)
    columns[0].metric("Scored", len(frame))
    for column, decision in zip(columns[1:], ("approve", "review", "decline"), strict=True):
        column.metric(decision.capitalize(), int(mix.get(decision, 0)))
    st.dataframe(frame, hide_index=True)
    st.download_button(
        "Download results (CSV)",
        frame.to_csv(index=False).encode(),
        file_name="scored_applicants.csv",
        mime="text/csv",
        icon=":material/download:",
    )


def _template_help(schema: FeatureSchema) -> None:
    with st.expander("File format"):
        st.markdown(
            "One applicant per row, a header with the schema's field names. Categorical fields take the "
            "category **codes** (not the labels); integer fields whole numbers within their range. "
            "Protected fields are optional (leave the column out or the cell blank)."
        )
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "field": spec.name,
                        "label": spec.label,
                        "required": not spec.protected,
                        "accepted values": ", ".join(spec.codes)
                        if spec.type == "categorical"
                        else f"{spec.min} to {spec.max}",
                    }
                    for spec in schema.fields
                ]
            ),
            hide_index=True,
        )
        st.download_button(
            "Download a template (CSV)",
            template_frame(schema).to_csv(index=False).encode(),
            file_name="applicants_template.csv",
            mime="text/csv",
        )


def render() -> None:
    st.title("Batch scoring")
    context = current()
    client = context.client
    try:
        schema = client.feature_schema(client.model_info())
    except ApiError as exc:
        show_api_error(exc, what="load the served model's schema")
        return
    st.caption("Each row is checked against the served model's schema before anything is sent for scoring.")
    _template_help(schema)
    upload = st.file_uploader("Applicants (CSV)", type=["csv"])
    if upload is None:
        return
    data = upload.getvalue()
    frame = _read_csv(data, context.max_upload_rows)
    if frame is None:
        return
    checked = check_upload(frame, schema)
    if checked.file_problems:
        for problem in checked.file_problems:
            st.error(f"**The file does not match the schema**: {problem}")
        return
    _show_check(checked, len(frame))
    if not checked.records:
        return
    digest = hashlib.sha256(data).hexdigest()
    if st.button(f"Score {len(checked.records):,} valid row(s)", type="primary"):
        scored = _score(context, checked)
        st.session_state[_RESULTS_KEY] = (digest, scored) if scored is not None else None
    kept = st.session_state.get(_RESULTS_KEY)
    if kept is not None and kept[0] == digest:
        _show_results(kept[1])


render()
