"""Bad and hostile input: each class gets its documented 4xx, naming the field and the rule; never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.code

JSON = {"Content-Type": "application/json"}


def _post(client: TestClient, body: bytes, path: str = "/v1/predict", headers: dict | None = None) -> Any:
    return client.post(path, content=body, headers=headers or JSON)


def _only_problem(response: Any) -> dict:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert len(detail) == 1, detail
    return detail[0]


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("duration_in_month", 1.5, "int_type"),
        ("duration_in_month", "24", "int_type"),
        ("duration_in_month", True, "int_type"),
        ("duration_in_month", None, "missing"),
        ("duration_in_month", [24], "int_type"),
        ("duration_in_month", 0, "greater_than_equal"),
        ("duration_in_month", 121, "less_than_equal"),
        ("duration_in_month", 10**30, "less_than_equal"),
        ("purpose", "yacht", "literal_error"),
        ("purpose", "CAR_NEW", "literal_error"),
        ("purpose", 3, "literal_error"),
        ("purpose", "car_new" * 5000, "literal_error"),
        ("age_in_years", 500, "less_than_equal"),
    ],
)
def test_wrong_value_is_422_naming_the_field_and_rule(
    client: TestClient, applicant: dict, field: str, value: Any, rule: str
) -> None:
    entry = _only_problem(client.post("/v1/predict", json={**applicant, field: value}))
    assert (entry["field"], entry["type"], entry["loc"]) == (field, rule, ["body", field])


def test_a_whole_number_written_as_a_float_is_that_integer(client: TestClient, applicant: dict) -> None:
    as_float = client.post("/v1/predict", json={**applicant, "duration_in_month": 24.0})
    as_int = client.post("/v1/predict", json={**applicant, "duration_in_month": 24})
    assert as_float.status_code == 200, "JSON Schema counts 24.0 as an integer"
    assert as_float.json()["probability_of_default"] == as_int.json()["probability_of_default"]


def test_batch_body_has_its_own_larger_limit(client: TestClient, applicant: dict) -> None:
    body = json.dumps({"applicants": [applicant] * 120}).encode()  # ~80 KB: over max_body_bytes (64 KB)
    assert len(body) > 65536
    response = _post(client, body, "/v1/predict/batch")
    assert response.status_code == 422 and response.json()["detail"][0]["type"] == "too_long", response.text


def test_unknown_category_lists_the_allowed_codes(client: TestClient, applicant: dict) -> None:
    entry = _only_problem(client.post("/v1/predict", json={**applicant, "housing": "castle"}))
    assert "'rent'" in entry["msg"] and "'own'" in entry["msg"] and "'for_free'" in entry["msg"]


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_nan_and_infinity_are_refused(client: TestClient, applicant: dict, token: bytes) -> None:
    body = (
        json.dumps({**applicant, "credit_amount": 0})
        .encode()
        .replace(b'"credit_amount": 0', b'"credit_amount": ' + token)
    )
    entry = _only_problem(_post(client, body))
    assert (entry["field"], entry["type"]) == ("credit_amount", "int_type")


def test_missing_field_is_422(client: TestClient, applicant: dict) -> None:
    body = {k: v for k, v in applicant.items() if k != "credit_history"}
    entry = _only_problem(client.post("/v1/predict", json=body))
    assert (entry["field"], entry["type"]) == ("credit_history", "missing")


def test_unknown_field_is_422(client: TestClient, applicant: dict) -> None:
    entry = _only_problem(client.post("/v1/predict", json={**applicant, "model_uri": "file:///etc/passwd"}))
    assert (entry["field"], entry["type"]) == ("model_uri", "extra_forbidden")


def test_duplicate_key_is_422(client: TestClient, applicant: dict) -> None:
    body = json.dumps(applicant)[:-1] + ', "duration_in_month": 6}'
    entry = _only_problem(_post(client, body.encode()))
    assert (entry["field"], entry["type"]) == ("duration_in_month", "duplicate_key")


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b"null", b"true"])
def test_body_that_is_not_an_object_is_422(client: TestClient, body: bytes) -> None:
    entry = _only_problem(_post(client, body))
    assert (entry["field"], entry["type"]) == ("body", "model_type")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"{'a': 1}",
        b'{"a": 1,}',
        b"\xff\xfe{}",
        b"[" * 20000 + b"]" * 20000,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        b'{"duration_in_month": ' + b"9" * 5000 + b"}",
    ],
    ids=["empty", "truncated", "single-quotes", "trailing-comma", "not-utf8", "deep-array", "deep-object", "huge-int"],
)
def test_malformed_json_is_400(client: TestClient, body: bytes) -> None:
    response = _post(client, body)
    assert response.status_code == 400, response.text
    assert isinstance(response.json()["detail"], str)


@pytest.mark.parametrize(
    "value",
    ["\ud800", "\udfff", "\u0000", "e\u0301", "\u202etnemyolpmenu", "😀" * 1000, "car_new\u200b"],
    ids=["lone-high-surrogate", "lone-low-surrogate", "nul", "combining", "rtl-override", "emoji", "zero-width"],
)
def test_unicode_edge_cases_are_422_not_500(client: TestClient, applicant: dict, value: str) -> None:
    body = json.dumps({**applicant, "purpose": value}).encode()  # ensure_ascii: surrogates as \ud800
    entry = _only_problem(_post(client, body))
    assert entry["field"] == "purpose"
    assert entry["type"] in {"literal_error", "string_unicode"}, "not a category code (or not encodable text)"


def test_unicode_unknown_key_is_echoed_safely(client: TestClient, applicant: dict) -> None:
    body = json.dumps({**applicant, "\ud800x" * 300: 1}).encode()
    entry = _only_problem(_post(client, body))
    assert entry["type"] in {"extra_forbidden", "string_unicode"}
    assert len(entry["field"]) < 1000, "a long key is truncated in the error"


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx"],
)
def test_wrong_content_type_is_415(client: TestClient, applicant: dict, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/v1/predict", content=json.dumps(applicant).encode(), headers=headers)
    assert response.status_code == 415, response.text


def test_json_content_type_with_charset_is_accepted(client: TestClient, applicant: dict) -> None:
    response = _post(
        client, json.dumps(applicant).encode(), headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert response.status_code == 200


def test_body_over_the_limit_is_413(client: TestClient, applicant: dict) -> None:
    body = json.dumps({**applicant, "padding": "x" * 70_000}).encode()
    assert _post(client, body).status_code == 413


def test_body_over_the_limit_without_content_length_is_413(client: TestClient) -> None:
    def chunks() -> Any:  # a streamed (chunked) body: no Content-Length to trust
        for _ in range(100):
            yield b" " * 1000

    response = client.post("/v1/predict", content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert "content-length" not in {k.lower() for k in response.request.headers}


def test_body_just_under_the_limit_is_read(client: TestClient, applicant: dict) -> None:
    body = json.dumps(applicant).encode()
    body += b" " * (65536 - len(body))
    assert _post(client, body).status_code == 200


def test_batch_names_each_bad_row_and_why(client: TestClient, applicant: dict) -> None:
    rows = [applicant, {**applicant, "purpose": "yacht"}, applicant, {**applicant, "credit_amount": -1}]
    response = client.post("/v1/predict/batch", json={"applicants": rows})
    assert response.status_code == 422
    problems = [(p["row"], p["field"], p["type"]) for p in response.json()["detail"]]
    assert problems == [(1, "purpose", "literal_error"), (3, "credit_amount", "greater_than_equal")]


def test_batch_over_the_maximum_is_422(client: TestClient, applicant: dict) -> None:
    entry = _only_problem(client.post("/v1/predict/batch", json={"applicants": [applicant] * 51}))
    assert (entry["field"], entry["type"]) == ("applicants", "too_long")
    assert "at most 50" in entry["msg"]


def test_empty_batch_is_422(client: TestClient) -> None:
    entry = _only_problem(client.post("/v1/predict/batch", json={"applicants": []}))
    assert (entry["field"], entry["type"]) == ("applicants", "too_short")


def test_batch_without_the_applicants_key_is_422(client: TestClient, applicant: dict) -> None:
    response = client.post("/v1/predict/batch", json=applicant)
    assert response.status_code == 422
    assert {p["type"] for p in response.json()["detail"]} == {"missing", "extra_forbidden"}


def test_bad_reasons_flag_is_422(client: TestClient, applicant: dict) -> None:
    entry = _only_problem(client.post("/v1/predict?reasons=maybe", json=applicant))
    assert entry["field"] == "reasons"


def test_wrong_method_is_405(client: TestClient) -> None:
    assert client.get("/v1/predict").status_code == 405


def test_a_content_length_of_thousands_of_digits_is_413_naming_the_header(client: TestClient) -> None:
    """What reaches the app from a server that passes such a header on (uvicorn's parser stops it first:
    tests/reliability/test_hostile_input.py); it used to raise in int() (a 500)."""
    response = client.post("/v1/predict", content=b"{}", headers={**JSON, "Content-Length": "9" * 5000})
    assert response.status_code == 413, response.text
    body = response.json()
    assert (body["field"], body["rule"]) == ("content-length", "max_body_bytes"), body
