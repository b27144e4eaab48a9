"""A version's validation report shown from its data with Streamlit's own elements.

The report's HTML page is never put into the Models page (the page that holds the admin-token
fields): nothing from the registry can run script there. The page itself is offered as a download.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def _plain(value: Any) -> str:
    """``value`` as literal text inside Markdown (no link, image, emphasis or HTML from the data)."""
    return _MARKDOWN.sub(r"\\\1", str(value))


def _table(rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
    def cell(value: Any) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        return f"{value:.4f}" if isinstance(value, float) else str(value if value is not None else "")

    frame = pd.DataFrame([[cell(v) for v in row] for row in rows], columns=list(columns))
    st.dataframe(frame, hide_index=True)


def _heading(text: str) -> None:
    st.markdown(f"**{text}**")


def _fairness(fairness: Mapping[str, Any]) -> None:
    for attribute, entry in fairness.items():
        ratio = entry.get("disparate_impact")
        ratio_text = f"{ratio:.3f}" if isinstance(ratio, int | float) else "not computed"
        st.caption(f"{_plain(attribute)}: disparate impact {ratio_text}")
        groups = entry.get("groups") or {}
        _table(
            [[group, g.get("n"), g.get("approval_rate")] for group, g in groups.items()],
            ["group", "applicants", "favourable rate"],
        )


def show_report(data: Mapping[str, Any]) -> None:
    """The report's nine sections, as the registered page has them."""
    st.markdown(f"#### Validation report: {_plain(data.get('model_name'))} version {_plain(data.get('version'))}")
    generated, run = _plain(data.get("generated_at")), _plain(data.get("run_id"))
    st.caption(f"Generated {generated} at registration, by the training run {run}.")
    _heading("1. Purpose and intended use")
    st.markdown(_plain(data.get("purpose") or "Not stated in this report."))
    _heading("2. Data and lineage")
    _table([[k, v] for k, v in (data.get("lineage") or {}).items()], ["item", "value"])
    _heading("3. Candidates tried")
    _table(data.get("candidates") or [], ["candidate", "CV AUC mean", "CV AUC std", "monotone", "selected"])
    _heading("4. Holdout metrics with 95% bootstrap intervals")
    st.caption(f"{_plain(data.get('bootstrap_rounds'))} seeded resamples of the holdout.")
    intervals = data.get("intervals") or {}
    rows = [[name, e.get("value"), e.get("low"), e.get("high")] for name, e in intervals.items()]
    _table(rows, ["metric", "value", "low", "high"])
    _heading("5. Calibration")
    calibration = data.get("calibration") or {}
    st.caption(
        f"Calibration in the large: mean predicted {calibration.get('mean_predicted', float('nan')):.4f}, "
        f"observed default rate {calibration.get('observed_rate', float('nan')):.4f}."
    )
    _table(
        [[b.get("predicted"), b.get("observed")] for b in calibration.get("bins") or []],
        ["mean predicted (bin)", "observed rate"],
    )
    _heading("6. Fairness by protected group")
    _fairness(data.get("fairness") or {})
    _heading("7. Stability between training and holdout (PSI)")
    st.caption("Below 0.1 stable, 0.1 to 0.25 moderate shift, above 0.25 major shift.")
    _table(sorted((data.get("psi") or {}).items()), ["field", "PSI"])
    _heading("8. Gate results at registration")
    _table(
        [
            [g.get("gate"), g.get("value"), g.get("limit"), "passed" if g.get("passed") else "failed"]
            for g in data.get("gates") or []
        ],
        ["gate", "value", "limit", "result"],
    )
    st.caption("The comparison with the champion is evaluated at promotion and recorded in the alias history.")
    _heading("9. Known limitations")
    st.markdown("\n".join(f"- {_plain(text)}" for text in data.get("limitations") or []))
