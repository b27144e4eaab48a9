"""Batch: upload a CSV of applicants, check every row, score the good ones through the API.

The separator is detected; categories are taken by code or by label; an id
column (``applicant_id`` by default, as the batch job's ``--id-column``) is
carried through to the results; rows that cannot be scored are downloadable
with what is wrong with each.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from typing import Any

import pandas as pd
import streamlit as st

from ui.api_client import ApiError, RequestRejectedError
from ui.context import UIContext, current, show_api_error
from ui.form_schema import FormSchema
from ui.present import DECISION_ORDER, decision_word, plural
from ui.uploads import (
    DEFAULT_ID_COLUMN,
    CheckedUpload,
    check_upload,
    chunks,
    detect_separator,
    guess_id_column,
    rejects_frame,
    results_frame,
    separator_name,
    template_frame,
)

_RESULTS_KEY = "batch.results"
_NO_ID = "(none: match results by row number)"


def _read_csv(data: bytes, max_rows: int) -> tuple[pd.DataFrame | None, str]:
    """All cells as text (the schema check converts them), or None with a message on the page."""
    separator = detect_separator(data)
    try:
        frame = pd.read_csv(
            io.BytesIO(data), sep=separator, dtype=str, keep_default_na=False, nrows=max_rows + 1, encoding="utf-8-sig"
        )
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        st.error("**This file cannot be read as CSV.** Save it as CSV (UTF-8) and upload it again.")
        with st.expander("Technical details"):
            st.code(str(exc), language=None, wrap_lines=True)
        return None, separator
    if len(frame) > max_rows:
        st.error(f"**The file has more than {max_rows:,} rows**, the most the UI takes in one upload.")
        return None, separator
    if frame.empty:
        st.warning("The file has a header but no applicants.")
        return None, separator
    return frame, separator


def _download_rejects(rejects: pd.DataFrame, *, key: str) -> None:
    st.download_button(
        f"Download the {plural(len(rejects), 'rejected row')} with their reasons (CSV)",
        rejects.to_csv(index=False).encode(),
        file_name="rejected_applicants.csv",
        mime="text/csv",
        icon=":material/download:",
        key=key,
    )


def _show_check(checked: CheckedUpload, frame: pd.DataFrame, schema: FormSchema, *, scored: bool = False) -> None:
    """The file's check; its rejects' download only until the file is scored (then the results offer one
    download with every row not scored, the service's refusals included)."""
    if checked.ignored_columns:
        st.info(f"Columns not in the schema are ignored: {', '.join(checked.ignored_columns)}")
    good, bad = len(checked.records), len(checked.bad_rows)
    columns = st.columns(3)
    columns[0].metric("Rows", len(frame))
    columns[1].metric("Valid", good)
    columns[2].metric("With errors", bad)
    if checked.problems:
        st.error(
            f"**{plural(bad, 'row')} {'breaks' if bad == 1 else 'break'} the schema** and will not be scored. "
            "Row numbers count data rows from 1."
        )
        labels = schema.labels()
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "row": p.row,
                        **({checked.id_column: checked.ids.get(p.row)} if checked.id_column else {}),
                        "field": labels.get(p.field, p.field),
                        "value": p.value,
                        "problem": p.rule,
                    }
                    for p in checked.problems
                ]
            ),
            hide_index=True,
        )
        if not scored:
            _download_rejects(rejects_frame(frame, checked), key="rejects.checked")


def _file_row(checked: CheckedUpload, offset: int, row_in_chunk: int | None) -> int | None:
    """The file row of a row the service names by its index within a chunk."""
    if row_in_chunk is None or not 0 <= offset + row_in_chunk < len(checked.record_rows):
        return None
    return checked.record_rows[offset + row_in_chunk]


def _score(context: UIContext, checked: CheckedUpload) -> tuple[list[Mapping[str, Any] | None], dict[int, str]] | None:
    """Score the valid rows in chunks with a progress bar: a result per row (None if the service refused it).

    Rows the service refuses (its rules can be newer than the form's) are set aside with its reason
    and the rest of their chunk is sent again; None (and a message) when the service fails.
    """
    results: list[Mapping[str, Any] | None] = []
    refused: dict[int, str] = {}
    progress = st.progress(0.0, text="Scoring...")
    limits = {"max_items": context.batch_chunk_size, "max_bytes": context.max_body_bytes}
    for offset, piece in chunks(checked.records, **limits):
        positions = list(range(len(piece)))
        try:
            try:
                answers = context.client.predict_batch(piece).get("results", [])
            except RequestRejectedError as exc:
                bad = {p.row for p in exc.problems if p.row is not None}
                if not bad:
                    raise
                for p in exc.problems:
                    if (row := _file_row(checked, offset, p.row)) is not None:
                        refused[row] = f"refused by the scoring service: {p.field}: {p.message}"
                positions = [i for i in positions if i not in bad]
                rest = [piece[i] for i in positions]
                answers = context.client.predict_batch(rest).get("results", []) if rest else []
        except ApiError as exc:
            progress.empty()
            show_api_error(exc, what="score this file")
            return None
        by_position = dict(zip(positions, answers, strict=True))
        results.extend(by_position.get(i) for i in range(len(piece)))
        done = min(offset + len(piece), len(checked.records))
        progress.progress(done / len(checked.records), text=f"Scored {done:,} of {len(checked.records):,}")
    progress.empty()
    return results, refused


def _scored_only(checked: CheckedUpload, results: list[Mapping[str, Any] | None]) -> tuple[CheckedUpload, list]:
    keep = [i for i, r in enumerate(results) if r is not None]
    return (
        CheckedUpload(
            records=[checked.records[i] for i in keep],
            record_rows=[checked.record_rows[i] for i in keep],
            problems=checked.problems,
            file_problems=checked.file_problems,
            ignored_columns=checked.ignored_columns,
            ids=checked.ids,
            id_column=checked.id_column,
        ),
        [results[i] for i in keep],
    )


def _show_results(results: pd.DataFrame, rejects: pd.DataFrame) -> None:
    st.subheader("Results")
    mix = results["decision"].value_counts() if not results.empty else pd.Series(dtype=int)
    columns = st.columns(4)
    columns[0].metric("Scored", len(results))
    for column, decision in zip(columns[1:], DECISION_ORDER, strict=True):
        word = decision_word(decision)
        column.metric(word, int(mix.get(word, 0)))
    st.dataframe(
        results,
        hide_index=True,
        column_config={
            "probability_of_default": st.column_config.NumberColumn(format="%.4f"),
            "reason_codes": None,  # codes are for the file other systems read, not for people
        },
    )
    st.download_button(
        "Download results (CSV)",
        results.to_csv(index=False).encode(),
        file_name="scored_applicants.csv",
        mime="text/csv",
        icon=":material/download:",
        key="results.download",
    )
    if not rejects.empty:
        st.warning(
            f"**{plural(len(rejects), 'row')} {'was' if len(rejects) == 1 else 'were'} not scored**; "
            "the download lists each with its reasons."
        )
        _download_rejects(rejects, key="rejects.results")


def _template_help(schema: FormSchema) -> None:
    with st.expander("File format"):
        st.markdown(
            "One applicant per row, a header with the schema's field names, separated by commas or "
            "semicolons (detected). Categorical fields take the category code or its label as shown on the "
            "Score page; number fields a plain number within their range. Optional fields may be left out or "
            f"blank (not provided). An id column (`{DEFAULT_ID_COLUMN}` by default, as the batch job's "
            "`--id-column`) is carried through to the results."
        )
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "field": spec.name,
                        "label": spec.plain_label,
                        "required": spec.required,
                        "accepted values": ", ".join(f"{c.code} ({c.label})" for c in spec.choices)
                        if spec.type == "categorical"
                        else spec.rule,
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
    upload = st.file_uploader("Applicants (CSV)", type=["csv", "txt"])
    if upload is None:
        return
    data = upload.getvalue()
    frame, separator = _read_csv(data, context.max_upload_rows)
    if frame is None:
        return
    if separator != ",":
        st.caption(f"Read as {separator_name(separator)}-separated.")
    columns = [str(c).strip() for c in frame.columns]
    candidates = [c for c in columns if c not in schema.by_name]
    guess = guess_id_column(columns, schema)
    id_choice = st.selectbox(
        "Id column (the batch job's --id-column)",
        [_NO_ID, *candidates],
        index=candidates.index(guess) + 1 if guess else 0,
        help=f"Carried through to the results and the rejected rows; the batch job's default is {DEFAULT_ID_COLUMN}.",
    )
    id_column = None if id_choice == _NO_ID else id_choice
    checked = check_upload(frame, schema, id_column=id_column)
    if checked.file_problems:
        for problem in checked.file_problems:
            st.error(f"**The file does not match the schema**: {problem}")
        return
    digest = hashlib.sha256(data + str(id_column).encode()).hexdigest()
    kept_results = st.session_state.get(_RESULTS_KEY)
    _show_check(checked, frame, schema, scored=kept_results is not None and kept_results[0] == digest)
    if not checked.records:
        return
    if st.button(f"Score {plural(len(checked.records), 'valid row')}", type="primary"):
        scored = _score(context, checked)
        if scored is None:
            st.session_state[_RESULTS_KEY] = None
        else:
            results, refused = scored
            kept, answers = _scored_only(checked, results)
            st.session_state[_RESULTS_KEY] = (
                digest,
                results_frame(kept, answers, schema),
                rejects_frame(frame, checked, refused),
            )
            st.rerun()  # draw the page once more as scored: one download of the rows not scored, not two
    kept_results = st.session_state.get(_RESULTS_KEY)
    if kept_results is not None and kept_results[0] == digest:
        _show_results(kept_results[1], kept_results[2])


render()
