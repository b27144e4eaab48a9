"""The response model of a decision's answer agrees with the decision record's one definition."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from pydantic import BaseModel

from credit_risk.decision_log.record import ANSWER_OBJECTS, FIELDS, answer_description
from serving.schemas import PredictionResponse
from tests.support.decision_records import decision_record

pytestmark = pytest.mark.code


def _object_model(annotation: Any) -> type[BaseModel] | None:
    """The response model an answer object's field holds (``ModelRef``, or the model in ``X | None``)."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _response_keys() -> dict[str, str | None]:
    """Every key of PredictionResponse (an object's as ``object.key``) with its description."""
    keys: dict[str, str | None] = {}
    for name, info in PredictionResponse.model_fields.items():
        inner = _object_model(info.annotation)
        if name in ANSWER_OBJECTS and inner is not None:
            keys.update({f"{name}.{key}": sub.description for key, sub in inner.model_fields.items()})
        else:
            keys[name] = info.description
    return keys


def test_every_answer_field_of_the_definition_is_in_the_response_model_and_no_other() -> None:
    defined = {f.answer for f in FIELDS if f.answer is not None}
    assert set(_response_keys()) == defined


def test_the_response_models_descriptions_are_the_definitions() -> None:
    for key, description in _response_keys().items():
        assert description == answer_description(key), f"PredictionResponse's {key!r} is described apart"
    for name in ANSWER_OBJECTS:
        described = PredictionResponse.model_fields[name].description
        assert described == answer_description(name), f"PredictionResponse's {name!r} is described apart"


def test_an_answer_with_every_optional_part_validates_against_the_response_model() -> None:
    answer = decision_record().to_answer()
    answer["case"] = {"id": 1, "state": "open", "due_at": "2026-03-05T12:30:15.123Z"}
    body = PredictionResponse.model_validate(answer)
    assert body.model_dump(by_alias=True, exclude_unset=True) == answer


def test_an_answer_without_optional_parts_validates_against_the_response_model() -> None:
    plain = decision_record(model_decision=None, experiment_mode=None, recourse=None, paused=False, reasons=())
    answer = plain.to_answer()
    assert PredictionResponse.model_validate(answer).model_dump(exclude_unset=True) == answer
