"""Score an applicant: a form built from the served model's schema, the decision and its reasons."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from credit_risk.schema import FeatureSchema, FieldSpec
from ui.api_client import ApiClient, ApiError, RequestRejectedError
from ui.context import current, show_api_error
from ui.present import DECISION_COLOURS, DECISION_WORDS, band_colours, reason_sentence

_FIELD_KEY = "applicant.{}"
_RESULT_KEY = "score.result"
_ERROR_KEY = "score.error"


def _field_input(spec: FieldSpec, *, optional: bool) -> None:
    """One widget per field: labels shown, codes sent; protected fields may be left empty."""
    key = _FIELD_KEY.format(spec.name)
    if spec.type == "categorical":
        labels = {c.code: c.label for c in spec.categories}
        options: list[str | None] = [None, *spec.codes] if optional else list(spec.codes)
        st.selectbox(
            spec.label,
            options,
            index=0,
            key=key,
            help=spec.description,
            format_func=lambda code: "(not given)" if code is None else labels[code],
        )
    else:
        default = None if optional else (spec.default if spec.default is not None else spec.min)
        st.number_input(
            spec.label,
            min_value=spec.min,
            max_value=spec.max,
            value=default,
            step=1,
            key=key,
            help=f"{spec.description} Range {spec.min} to {spec.max}.",
            placeholder="(not given)" if optional else None,
        )


def _applicant(schema: FeatureSchema) -> dict[str, Any]:
    """The record to send: every model input, and the protected fields that were filled in."""
    record = {}
    for spec in schema.fields:
        value = st.session_state.get(_FIELD_KEY.format(spec.name))
        if value is None:
            continue
        record[spec.name] = int(value) if spec.type == "integer" else value
    return record


def _submit(client: ApiClient, schema: FeatureSchema) -> None:
    """Form callback: score before the page re-renders, so errors can sit next to their fields."""
    st.session_state[_RESULT_KEY] = None
    st.session_state[_ERROR_KEY] = None
    try:
        st.session_state[_RESULT_KEY] = client.predict(_applicant(schema))
    except ApiError as exc:
        st.session_state[_ERROR_KEY] = exc


def _field_problems() -> dict[str, list[str]]:
    error = st.session_state.get(_ERROR_KEY)
    problems: dict[str, list[str]] = {}
    if isinstance(error, RequestRejectedError):
        for problem in error.problems:
            problems.setdefault(problem.field, []).append(problem.message)
    return problems


def _render_form(client: ApiClient, schema: FeatureSchema) -> None:
    problems = _field_problems()

    def field(spec: FieldSpec, *, optional: bool) -> None:
        _field_input(spec, optional=optional)
        for message in problems.get(spec.name, []):
            st.markdown(f":red[**{escape(spec.label)}**: {escape(message)}]")

    with st.form("applicant"):
        columns = st.columns(2)
        for i, spec in enumerate(schema.inputs):
            with columns[i % 2]:
                field(spec, optional=False)
        if schema.protected_fields:
            with st.expander("For fairness monitoring only (optional)"):
                st.caption(
                    "These attributes are never passed to the model. If given, they are logged so that "
                    "approval rates can be compared across groups."
                )
                columns = st.columns(2)
                for i, spec in enumerate(schema.protected_fields):
                    with columns[i % 2]:
                        field(spec, optional=True)
        st.form_submit_button("Score applicant", type="primary", on_click=_submit, args=(client, schema))


def _position(probability: float) -> float:
    """Where a probability sits on the gauge, in percent of its width.

    A square-root scale spreads the low probabilities, where most bands and
    both cut-offs sit, over most of the gauge.
    """
    return 100 * min(max(probability, 0.0), 1.0) ** 0.5


def _gauge_html(probability: float, info: Mapping[str, Any]) -> str | None:
    """The risk bands as coloured segments, a marker at the applicant and ticks at the policy's cut-offs."""
    bands = info.get("risk_bands") or []
    if not bands:
        return None
    colours = band_colours([b["name"] for b in bands])
    segments, lower = [], 0.0
    for band in bands:
        width = _position(band["max_probability"]) - _position(lower)
        segments.append(
            f'<div title="{escape(band["name"])}: {lower:.1%} to {band["max_probability"]:.1%}" '
            f'style="width:{width:.2f}%;background:{colours[band["name"]]};color:white;text-align:center;'
            f'font-weight:600;line-height:1.8rem">{escape(band["name"])}</div>'
        )
        lower = band["max_probability"]
    policy = info.get("decision") or {}
    # The approve label ends at its tick and the decline label starts at its own, so they never overlap.
    ticks = "".join(
        f'<div style="position:absolute;left:{_position(policy[key]):.2f}%;top:0;height:2.6rem;'
        f'border-left:2px dashed #333"></div>'
        f'<div style="position:absolute;left:{_position(policy[key]):.2f}%;top:2.6rem;transform:translateX({shift});'
        f'font-size:0.75rem;color:#333;white-space:nowrap;padding:0 0.3rem">{text} {policy[key]:.1%}</div>'
        for key, text, shift in (
            ("approve_below", "approve below", "-100%"),
            ("decline_at_or_above", "decline from", "0"),
        )
        if isinstance(policy.get(key), int | float)
    )
    marker = (
        f'<div style="position:absolute;left:{_position(probability):.2f}%;top:-2.3rem;transform:translateX(-50%);'
        f'font-weight:700;white-space:nowrap;text-align:center;line-height:1.1rem">{probability:.1%}<br>&#9660;</div>'
    )
    return (
        '<div style="position:relative;margin:2.6rem 0.5rem 2.2rem 0.5rem">'
        f'{marker}<div style="display:flex;border-radius:0.3rem;overflow:hidden;margin-top:0.4rem">'
        f"{''.join(segments)}</div>{ticks}</div>"
    )


def _reasons_chart(reasons: list[Mapping[str, Any]]) -> alt.Chart:
    frame = pd.DataFrame(
        [{"factor": f"{r['label']} ({r['code']})", "contribution": r["contribution"]} for r in reasons]
    )
    return (
        alt.Chart(frame)
        .mark_bar(color=DECISION_COLOURS["decline"])
        .encode(
            x=alt.X("contribution:Q", title="Added risk (log-odds of default)"),
            y=alt.Y("factor:N", sort="-x", title=None, axis=alt.Axis(labelLimit=260)),
            tooltip=["factor", alt.Tooltip("contribution:Q", format=".3f")],
        )
        .properties(height=36 * len(reasons) + 40)
    )


def _render_result(result: Mapping[str, Any], info: Mapping[str, Any], schema: FeatureSchema) -> None:
    decision = str(result.get("decision", ""))
    probability = float(result["probability_of_default"])
    band = str(result.get("risk_band", ""))
    colour = DECISION_COLOURS.get(decision, "#555")
    band_colour = band_colours([b["name"] for b in info.get("risk_bands") or [{"name": band}]]).get(band, "#555")
    st.subheader("Decision")
    st.markdown(
        f'<div style="background:{colour};color:white;padding:0.8rem 1.2rem;border-radius:0.5rem;'
        f'font-size:1.4rem;font-weight:600">{escape(DECISION_WORDS.get(decision, decision))}'
        f'<span style="float:right;background:{band_colour};border:2px solid white;border-radius:0.4rem;'
        f'padding:0 0.6rem">Band {escape(band)}</span></div>',
        unsafe_allow_html=True,
    )
    top, bottom = st.columns(2), st.columns(2)
    top[0].metric("Probability of default", f"{probability:.1%}")
    top[1].metric("Score", result.get("score"), help="Scorecard points: higher means lower risk.")
    bottom[0].metric("Risk band", band)
    bottom[1].metric("Model version", f"v{(result.get('model') or {}).get('version', '?')}")
    gauge = _gauge_html(probability, info)
    if gauge is not None:
        st.markdown(gauge, unsafe_allow_html=True)
        st.caption("Probability of default on the risk bands (square-root scale); dashed: the decision cut-offs.")

    st.subheader("Principal reasons")
    reasons = list(result.get("reasons") or [])
    if reasons:
        st.caption("The factors that raised this applicant's assessed risk the most (TreeSHAP attributions).")
        for reason in reasons:
            sentence = reason_sentence(reason, schema.by_name.get(reason.get("field", "")))
            st.markdown(f"- **{escape(str(reason.get('code')))}**: {escape(sentence)}")
        st.altair_chart(_reasons_chart(reasons), width="stretch")
    else:
        st.info("No factor raised this applicant's assessed risk above the model's baseline.")

    model = result.get("model") or {}
    st.caption(
        f"Scored by model **{model.get('name')}** version **{model.get('version')}** "
        f"(alias `{model.get('alias')}`), decision policy `{result.get('decision_policy_version')}`, "
        f"at {result.get('scored_at')}; request id `{result.get('request_id')}`."
    )


def render() -> None:
    st.title("Score an applicant")
    client = current().client
    try:
        info = client.model_info()
        schema = client.feature_schema(info)
    except ApiError as exc:
        show_api_error(exc, what="load the served model's form")
        return
    st.caption(
        f"Served model: **{info.get('name')}** version **{info.get('version')}** (alias `{info.get('alias')}`). "
        "Fields and ranges come from that model's feature schema."
    )
    form_column, result_column = st.columns([3, 2], gap="large")
    with form_column:
        _render_form(client, schema)
    with result_column:
        error = st.session_state.get(_ERROR_KEY)
        if error is not None:
            show_api_error(error, what="score this applicant")
        result = st.session_state.get(_RESULT_KEY)
        if result:
            _render_result(result, info, schema)
        elif error is None:
            st.info("Fill in the application and press **Score applicant**: the decision and its reasons appear here.")


render()
