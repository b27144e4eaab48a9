"""Loading an outcomes file from the Performance page (admins): the API's checks, the rows it refuses
set aside with their reasons and downloadable, the rest stored, as ``make outcomes`` does with a file."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import streamlit as st

from ui.api_client import ApiError, RequestRejectedError
from ui.context import current, may, role_token, show_api_error
from ui.present import plural
from ui.uploads import detect_separator

COLUMNS = ("request_id", "applicant_id", "outcome", "observed_at")


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The file's rows as the API takes them: its columns only, blanks left out."""
    rows = []
    for record in frame.to_dict("records"):
        rows.append(
            {k: str(v).strip() for k, v in record.items() if k in COLUMNS and str(v).strip() not in ("", "nan")}
        )
    return rows


def load_outcomes(rows: list[dict[str, Any]], *, batch: int) -> tuple[int, pd.DataFrame] | None:
    """Send ``rows`` in batches; a batch the service refuses loses only its bad rows (set aside with the
    reason) and is sent again. Returns (rows stored, refused rows with reasons); None when the service fails."""
    client, stored, refused = current().client, 0, []
    progress = st.progress(0.0, text="Loading outcomes...")
    for start in range(0, len(rows), batch):
        piece = list(enumerate(rows[start : start + batch]))
        while piece:
            try:
                answer = client.post_outcomes(token=role_token(), rows=[row for _, row in piece])
            except RequestRejectedError as exc:
                bad = {p.row for p in exc.problems if p.row is not None}
                if not bad:
                    show_api_error(exc, what="load these outcomes")
                    progress.empty()
                    return None
                for p in exc.problems:
                    if p.row is not None and p.row < len(piece):
                        position, row = piece[p.row]
                        refused.append({"row": start + position + 1, **row, "problem": f"{p.field}: {p.message}"})
                piece = [entry for i, entry in enumerate(piece) if i not in bad]
                continue
            except ApiError as exc:
                show_api_error(exc, what="load these outcomes")
                progress.empty()
                return None
            stored += int(answer.get("rows", 0))
            break
        progress.progress(min(start + batch, len(rows)) / len(rows), text=f"Loaded {min(start + batch, len(rows)):,}")
    progress.empty()
    return stored, pd.DataFrame(refused)


def outcomes_panel() -> None:
    """The upload for admins; a sentence saying who can for everyone else."""
    if not may("admin"):
        return
    with st.expander("Load an outcomes file"):
        st.caption(
            "A CSV with a row per loan: request_id (or applicant_id), outcome (in the data's own terms, e.g. "
            "good or bad) and observed_at (a date). Rows the service refuses are set aside with the reason; "
            "loading the same file twice adds nothing."
        )
        upload = st.file_uploader("Outcomes CSV", type=["csv"], key="outcomes.file")
        if upload is None or not st.button("Load outcomes", key="outcomes.load", type="primary"):
            return
        data = upload.getvalue()
        try:
            frame = pd.read_csv(io.BytesIO(data), sep=detect_separator(data), dtype=str, keep_default_na=False)
        except (ValueError, UnicodeDecodeError) as exc:
            st.error(f"The file could not be read as a CSV ({exc}).")
            return
        missing = [c for c in ("outcome", "observed_at") if c not in frame.columns]
        if missing or not ({"request_id", "applicant_id"} & set(frame.columns)):
            st.error(
                "The file needs the columns outcome, observed_at and request_id (or applicant_id); "
                f"it has: {', '.join(map(str, frame.columns))}."
            )
            return
        loaded = load_outcomes(_rows(frame), batch=current().outcomes_batch_size)
        if loaded is None:
            return
        stored, refused = loaded
        st.success(f"Stored {plural(stored, 'outcome')}. Make the report again with **Refresh now** to see them.")
        if not refused.empty:
            st.warning(f"**{plural(len(refused), 'row')} refused**, each with its reason below.")
            st.dataframe(refused.astype(str), hide_index=True)
            st.download_button(
                "Download the refused rows (CSV)",
                refused.to_csv(index=False).encode(),
                file_name="refused_outcomes.csv",
                mime="text/csv",
                key="outcomes.rejects",
            )
