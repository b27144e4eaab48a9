"""Hostile input over a real uvicorn process: each gets its documented 4xx, fast, and the service lives on.

Complements tests/serving/test_bad_input.py (in-process, the single-applicant
route): here the transport-level cases a TestClient cannot send (a Content-Length
nobody will honour, chunked uploads, compressed bodies, oversized headers) and
the batch and admin routes, which parse JSON on their own path.
"""

from __future__ import annotations

import gzip
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.reliability.conftest import Fleet
from tests.support.api import RunningApi, running_api

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]  # a hang guard (set-up trains models)

JSON = {"Content-Type": "application/json"}
LIMIT = 65536  # serving.max_body_bytes (the committed config)
FAST = 5.0  # seconds: a refusal must not wait on the attacker


@pytest.fixture(scope="module")
def api(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    with running_api(fleet.store, tmp_path=tmp_path_factory.mktemp("hostile")) as service:
        yield service
        assert httpx.get(f"{service.url}/health").status_code == 200, "the service survived the module"


@pytest.fixture(scope="module")
def example(fleet: Fleet) -> dict[str, Any]:
    return fleet.store.config.features.example_record()


@pytest.fixture
def http(api: RunningApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=30, trust_env=False) as client:
        yield client


def _raw(api: RunningApi, head: bytes, body_parts: tuple[bytes, ...] = ()) -> tuple[int, bytes, float]:
    """Send bytes on a raw socket; (status, response, seconds to the status line). Stops sending
    when the server has answered and closed."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", api.port), timeout=FAST * 2) as sock:
        sock.sendall(head)
        for part in body_parts:
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        elapsed = time.monotonic() - started
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    return status, data, elapsed


def _problem(response: httpx.Response, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    return detail[0]


# ------------------------------------------------------------------ size


def test_a_declared_length_over_the_limit_is_refused_without_reading_the_body(api: RunningApi) -> None:
    head = (
        b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000000\r\n\r\n{"
    )
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", api.port), timeout=FAST * 3) as sock:
        sock.sendall(head)  # and then nothing: the client never sends the gigabyte it announced
        try:
            first = sock.recv(1024)
        except TimeoutError:
            first = b""
    elapsed = time.monotonic() - started
    assert first.startswith(b"HTTP/1.1 413"), f"no 413 within {elapsed:.1f}s: {first[:100]!r}"
    assert elapsed < FAST


def _refusal(api: RunningApi, path: str, length: bytes) -> tuple[int, dict[str, Any]]:
    """POST with this Content-Length on a raw socket: the status and the problem body."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n".encode()
        + b"Content-Length: "
        + length
        + b"\r\n\r\n{}"
    )
    with socket.create_connection(("127.0.0.1", api.port), timeout=FAST * 2) as sock:
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):  # the refusal closes the connection
            data += chunk
    assert data.startswith(b"HTTP/1.1 4"), data[:300]
    return int(data.split(b" ", 2)[1]), json.loads(data.split(b"\r\n\r\n", 1)[1])


@pytest.mark.parametrize("path", ["/v1/predict", "/v1/predict/batch", "/v1/outcomes"])
def test_a_content_length_of_thousands_of_digits_is_400_naming_the_header(api: RunningApi, path: str) -> None:
    status, body = _refusal(api, path, b"9" * 5000)  # past what the HTTP parser reads (64 bits)
    assert status == 400, body
    assert (body["field"], body["rule"]) == ("content-length", "content_length"), body
    assert "5000-digit" in body["detail"], body


@pytest.mark.parametrize("path", ["/v1/predict", "/v1/predict/batch", "/v1/outcomes"])
def test_a_content_length_of_nineteen_digits_is_413_naming_the_header(api: RunningApi, path: str) -> None:
    status, body = _refusal(api, path, b"9" * 19)  # fits 64 bits: the app refuses it
    assert status == 413, body
    assert (body["field"], body["rule"]) == ("content-length", "max_body_bytes"), body
    assert "19-digit" in body["detail"] and "over the limit of" in body["detail"], body


def test_a_chunked_body_over_the_limit_is_413_over_a_real_socket(api: RunningApi) -> None:
    head = (
        b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b" " * 8192
    parts = [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(LIMIT // len(chunk) + 4)]
    status, data, elapsed = _raw(api, head, (*parts, b"0\r\n\r\n"))
    assert status == 413, data[:300]
    assert elapsed < FAST


def test_a_compressed_body_is_not_inflated(http: httpx.Client, example: dict) -> None:
    # 20 MB of JSON whitespace in ~20 KB of gzip: a service that inflated it would be over any limit
    bomb = gzip.compress(json.dumps(example).encode() + b" " * 20_000_000, compresslevel=9)
    assert len(bomb) < LIMIT
    started = time.monotonic()
    response = http.post("/v1/predict", content=bomb, headers={**JSON, "Content-Encoding": "gzip"})
    assert response.status_code in (400, 415), response.text[:300]
    assert time.monotonic() - started < FAST


def test_an_oversized_header_is_a_4xx_not_a_crash(api: RunningApi, http: httpx.Client, example: dict) -> None:
    head = (
        b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"X-Request-ID: " + b"a" * 200_000 + b"\r\nContent-Length: 2\r\n\r\n{}"
    )
    status, data, _ = _raw(api, head)
    assert 400 <= status < 500, data[:300]
    assert http.post("/v1/predict", json=example).status_code == 200, "the service still answers"


# ------------------------------------------------------------------ shape


@pytest.mark.parametrize("path", ["/v1/predict/batch", "/v1/admin/promote", "/v1/admin/rollback"])
def test_deeply_nested_json_is_400_on_every_route_that_parses_a_body(
    api: RunningApi, http: httpx.Client, path: str
) -> None:
    body = b'{"applicants":' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    response = http.post(path, content=body, headers={**JSON, **api.admin_headers()})
    assert response.status_code == 400, response.text[:300]
    assert "nested" in response.json()["detail"]


def test_a_huge_array_of_applicants_is_refused_by_count_before_validation(http: httpx.Client) -> None:
    body = b'{"applicants": [' + b",".join([b"0"] * 30_000) + b"]}"
    assert len(body) < LIMIT
    started = time.monotonic()
    entry = _problem(http.post("/v1/predict/batch", content=body, headers=JSON))
    assert (entry["field"], entry["type"]) == ("applicants", "too_long")
    assert time.monotonic() - started < FAST


def test_a_huge_array_as_a_field_value_is_one_422(http: httpx.Client, example: dict) -> None:
    response = http.post("/v1/predict", json={**example, "purpose": [1] * 20_000})
    entry = _problem(response)
    assert entry["field"] == "purpose"
    assert len(response.content) < 5_000, "the error does not echo the array back"


def test_thousands_of_unknown_keys_get_a_bounded_answer(http: httpx.Client, example: dict) -> None:
    body = {**example, **{f"k{i}": 0 for i in range(5_000)}}
    started = time.monotonic()
    response = http.post("/v1/predict", json=body)
    assert response.status_code == 422
    assert all(p["type"] == "extra_forbidden" for p in response.json()["detail"])
    assert time.monotonic() - started < FAST


@pytest.mark.parametrize("path", ["/v1/predict/batch", "/v1/admin/promote"])
@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/json-patch+json", None])
def test_wrong_content_type_is_415_on_batch_and_admin_routes(
    api: RunningApi, http: httpx.Client, path: str, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = http.post(path, content=b'{"applicants": []}', headers={**headers, **api.admin_headers()})
    assert response.status_code == 415, response.text[:300]


# ------------------------------------------------------------------ values


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_in_a_batch_row_are_422_naming_the_row(
    http: httpx.Client, example: dict, token: str
) -> None:
    rows = json.dumps([example, {**example, "credit_amount": "__X__"}]).replace('"__X__"', token)
    entry = _problem(http.post("/v1/predict/batch", content=f'{{"applicants": {rows}}}'.encode(), headers=JSON))
    assert (entry["row"], entry["field"], entry["type"]) == (1, "credit_amount", "int_type")


@pytest.mark.parametrize("number", ["2.5e-1", "24.5", "1E-300"])
def test_integer_fields_refuse_fractional_numbers(http: httpx.Client, example: dict, number: str) -> None:
    body = json.dumps({**example, "duration_in_month": "__X__"}).replace('"__X__"', number)
    entry = _problem(http.post("/v1/predict", content=body.encode(), headers=JSON))
    assert (entry["field"], entry["type"]) == ("duration_in_month", "int_type")


@pytest.mark.parametrize(("number", "value"), [("2.4e1", 24), ("24.0", 24)])
def test_integral_numbers_written_as_floats_count_as_integers(
    http: httpx.Client, example: dict, number: str, value: int
) -> None:
    """JSON Schema's "integer" (the documented OpenAPI type) includes 24.0 and 2.4e1."""
    body = json.dumps({**example, "duration_in_month": "__X__"}).replace('"__X__"', number)
    response = http.post("/v1/predict", content=body.encode(), headers=JSON)
    assert response.status_code == 200, response.text[:300]
    plain = http.post("/v1/predict", json={**example, "duration_in_month": value}).json()
    assert response.json()["probability_of_default"] == plain["probability_of_default"]


def test_negative_zero_is_out_of_range_not_a_type_error(http: httpx.Client, example: dict) -> None:
    body = json.dumps({**example, "duration_in_month": "__X__"}).replace('"__X__"', "-0.0")
    entry = _problem(http.post("/v1/predict", content=body.encode(), headers=JSON))
    assert (entry["field"], entry["type"]) == ("duration_in_month", "greater_than_equal")


@pytest.mark.parametrize("number", ["024", "0x18", "+24", ".5"])
def test_numbers_that_are_not_json_are_400(http: httpx.Client, example: dict, number: str) -> None:
    body = json.dumps({**example, "duration_in_month": "__X__"}).replace('"__X__"', number)
    assert http.post("/v1/predict", content=body.encode(), headers=JSON).status_code == 400


def test_a_very_long_key_in_a_batch_row_is_422_and_not_echoed_in_full(http: httpx.Client, example: dict) -> None:
    key = "k" * 60_000
    response = http.post("/v1/predict/batch", json={"applicants": [{**example, key: 1}]})
    entry = _problem(response)
    assert entry["row"] == 0 and entry["type"] == "extra_forbidden"
    assert len(response.content) < 5_000


@pytest.mark.parametrize(
    "value",
    ["\ud800", "\u202eown", "own\u0000", "\ufeffown", "ｏｗｎ", "own\u200d"],
    ids=["lone-surrogate", "rtl-override", "nul", "bom", "fullwidth", "zero-width-joiner"],
)
def test_unicode_edge_cases_in_a_batch_row_are_422_naming_the_row(
    http: httpx.Client, example: dict, value: str
) -> None:
    body = json.dumps({"applicants": [example, example, {**example, "housing": value}]}).encode()  # \ud800 escaped
    entry = _problem(http.post("/v1/predict/batch", content=body, headers=JSON))
    assert (entry["row"], entry["field"]) == (2, "housing")
    assert entry["type"] in {"literal_error", "string_unicode"}


def test_a_nul_and_a_lone_surrogate_in_a_key_are_422(http: httpx.Client, example: dict) -> None:
    body = json.dumps({**example, "hous\u0000ing\ud800": "own"}).encode()
    entry = _problem(http.post("/v1/predict", content=body, headers=JSON))
    assert entry["type"] in {"extra_forbidden", "string_unicode"}


def test_a_body_that_is_not_utf8_is_400_even_if_it_is_json(http: httpx.Client, example: dict) -> None:
    """The contract: JSON bodies are UTF-8 (RFC 8259); anything else is malformed."""
    body = json.dumps(example).encode("utf-16")
    response = http.post("/v1/predict", content=body, headers=JSON)
    assert response.status_code == 400, f"a UTF-16 body was accepted: {response.status_code} {response.text[:200]}"


@pytest.mark.parametrize(
    "body",
    [
        '{"applicants": [%(row)s], "applicants": [%(row)s]}',
        '{"applicants": [%(row)s, %(dup)s]}',
    ],
    ids=["wrapper-key-twice", "row-key-twice"],
)
def test_duplicate_keys_in_a_batch_are_422(http: httpx.Client, example: dict, body: str) -> None:
    row = json.dumps(example)
    dup = row[:-1] + ', "housing": "rent"}'
    entry = _problem(http.post("/v1/predict/batch", content=(body % {"row": row, "dup": dup}).encode(), headers=JSON))
    assert entry["type"] == "duplicate_key"
    assert entry["field"] in {"applicants", "housing"}
