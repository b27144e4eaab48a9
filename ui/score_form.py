"""The Score page's form: one entry per field of the served model's schema, each checked against
its rule as it is entered, and Score, which sends only a complete, valid application.

Required fields start empty and Score refuses until they are set; the entries survive an API
failure (and a page switch), and a failed call can be retried as it was (:func:`submit`).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

import streamlit as st

from ui.api_client import ApiClient, ApiError, RequestRejectedError
from ui.form_schema import FormField, FormSchema
from ui.uploads import APPLICANT_ID_TEXT

_FIELD_KEY = "applicant.{}"
STATE_KEY = "score.state"  # what the last press of Score gave: result or error, and the inputs it was for
NOT_PROVIDED = "__not_provided__"
_ERROR_COLOUR = "#b3261e"  # 6.5:1 on white


def _key(spec: FormField) -> str:
    return _FIELD_KEY.format(spec.name)


def score_state() -> dict[str, Any]:
    return st.session_state.setdefault(STATE_KEY, {})


# ------------------------------------------------------------------ the entries


def raw_inputs(schema: FormSchema) -> dict[str, Any]:
    """What the form holds now, as the widgets hold it (codes, typed text)."""
    return {spec.name: st.session_state.get(_key(spec)) for spec in schema.fields}


def _check(spec: FormField, raw: Any) -> tuple[Any, str | None]:
    """One entry -> (API value, None) or (None, the rule it breaks); None is "not provided"."""
    if spec.value_labels and not isinstance(raw, str):  # a coded field's choice: the value itself
        if raw is None:
            return None, "Choose a value: it is required" if spec.required else None
        return (None if raw == NOT_PROVIDED else int(raw)), None
    if spec.type == "categorical":
        if raw is None:
            return None, "Choose a value: it is required" if spec.required else None
        return (None if raw == NOT_PROVIDED else raw), None
    return spec.parse_text(raw)


def _applicant(schema: FormSchema, raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The record to send (every field; optional ones not provided are null) and the problems."""
    record, problems = {}, {}
    for spec in schema.fields:
        value, problem = _check(spec, raw.get(spec.name))
        if problem is not None:
            problems[spec.name] = problem
        else:
            record[spec.name] = value
    return record, problems


_APPLICANT_ID_KEY = "score.applicant_id"


def _applicant_id_problem(text: str) -> str | None:
    """The applicant id's rule in words (the API's own: letters, digits and . _ : -, at most 128)."""
    if text and not APPLICANT_ID_TEXT.fullmatch(text):
        return (
            "Enter an applicant id of letters, digits and . _ : - only, starting with a letter or digit, "
            f"at most 128 characters (you entered {text[:40]})."
        )
    return None


def submit(client: ApiClient, schema: FormSchema) -> None:
    """Score button (and Retry): check every entry first, then score, before the page re-renders."""
    raw = raw_inputs(schema)
    record, problems = _applicant(schema, raw)
    applicant_id = str(st.session_state.get(_APPLICANT_ID_KEY) or "").strip()
    id_problem = _applicant_id_problem(applicant_id)
    if id_problem is not None:
        problems = {**problems, "applicant_id": id_problem}
    elif applicant_id:
        record["applicant_id"] = applicant_id
    state = score_state()
    state.update(attempted=True, inputs=raw, result=None, error=None, refused=problems, applicant_id=applicant_id)
    if problems:
        return
    try:
        state["result"] = client.predict(record, recourse=True)
    except ApiError as exc:
        state["error"] = exc


def _field_input(spec: FormField, problem: str | None) -> None:
    """One widget per field: labels shown, codes sent; the rule in the placeholder, a broken rule under it."""
    key = _key(spec)
    help_text = " ".join(part for part in (spec.description, f"Accepted: {spec.rule}.") if part)
    if spec.type == "categorical":
        options = [*spec.codes] if spec.required else [NOT_PROVIDED, *spec.codes]
        st.selectbox(
            spec.label,
            options,
            index=None if spec.required else 0,
            key=key,
            help=help_text,
            placeholder="Choose an option",
            format_func=lambda code: "Not provided" if code == NOT_PROVIDED else spec.label_of(code),
            persist_state="session",
        )
    elif spec.value_labels:  # a coded number: what each value means, the value itself sent
        values = [value for value, _ in spec.value_labels]
        options = values if spec.required else [NOT_PROVIDED, *values]
        st.selectbox(
            spec.label,
            options,
            index=None if spec.required else 0,
            key=key,
            help=" ".join(part for part in (spec.description, "Choose what applies.") if part),
            placeholder="Choose an option",
            format_func=lambda value: "Not provided" if value == NOT_PROVIDED else spec.label_of(value),
            persist_state="session",
        )
    else:
        st.text_input(
            spec.label,
            key=key,
            help=help_text,
            placeholder=spec.range_text + ("" if spec.required else " (blank: not provided)"),
            persist_state="session",
        )
    if problem is not None:
        st.markdown(
            f'<p role="alert" style="color:{_ERROR_COLOUR};margin:-0.6rem 0 0.6rem 0;font-size:0.9rem">'
            f"&#9888; {escape(spec.plain_label)}: {escape(problem)}.</p>",
            unsafe_allow_html=True,
        )


def _service_problems(schema: FormSchema, raw: Mapping[str, Any]) -> dict[str, str]:
    """The fields the service itself refused at the last Score, while they still hold what was sent."""
    state = score_state()
    error, sent = state.get("error"), state.get("inputs") or {}
    if not isinstance(error, RequestRejectedError):
        return {}
    return {  # the field's rule in words (the service's own wording is in the message's technical details)
        p.field: f"the scoring service refused it: enter {schema.by_name[p.field].rule}"
        for p in error.problems
        if p.field in schema.by_name and raw.get(p.field) == sent.get(p.field)
    }


def render_form(client: ApiClient, schema: FormSchema) -> None:
    raw = raw_inputs(schema)
    _, problems = _applicant(schema, raw)
    problems = {**_service_problems(schema, raw), **problems}
    attempted = bool(score_state().get("attempted"))

    def shown(spec: FormField) -> str | None:
        # A rule broken by what was typed shows at once; an empty required field only after Score.
        problem = problems.get(spec.name)
        empty = raw.get(spec.name) in (None, "")
        return problem if problem is not None and (attempted or not empty) else None

    applicant_id = str(st.session_state.get(_APPLICANT_ID_KEY) or "").strip()
    st.text_input(
        "Applicant id (optional)",
        key=_APPLICANT_ID_KEY,
        placeholder="e.g. A-2026-00042",
        help="Your reference for this applicant: the decision is logged under it, so it can be found on the "
        "Decisions page and a notice can be addressed.",
    )
    id_problem = _applicant_id_problem(applicant_id)
    if id_problem:
        st.error(id_problem, icon=":material/error:")
    columns = st.columns(2)
    for i, spec in enumerate(schema.inputs):
        with columns[i % 2]:
            _field_input(spec, shown(spec))
    if schema.protected_fields:
        with st.expander("For fairness monitoring only (optional)"):
            st.caption(
                "These attributes are never passed to the model. If given, they are logged so that "
                "approval rates can be compared across groups."
            )
            columns = st.columns(2)
            for i, spec in enumerate(schema.protected_fields):
                with columns[i % 2]:
                    _field_input(spec, shown(spec))
    st.button("Score applicant", type="primary", on_click=submit, args=(client, schema))
