"""Every error the service can answer, and the one place that maps them to HTTP.

Bad input is a 4xx that names the field and the rule; a 500 is only ever a
bug (logged with its traceback). Error bodies never echo the input back: a
value can be huge or not even encodable (lone surrogates), and echoing it
would turn a 4xx into a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger(__name__)

_MAX_TEXT = 200  # longest field name or message echoed in an error


# ------------------------------------------------------------------ exceptions


class ServiceError(Exception):
    """Base of the service's own errors; ``status`` is the HTTP status code."""

    status = 500

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class MalformedBodyError(ServiceError):
    """The body is not JSON (or not UTF-8, or nested too deep): 400."""

    status = 400


class UnauthorizedError(ServiceError):
    """Admin call without a bearer token: 401."""

    status = 401


class ForbiddenError(ServiceError):
    """Admin call with a wrong token: 403."""

    status = 403


class NotFoundError(ServiceError):
    """Unknown resource, or admin routes switched off (no token configured): 404."""

    status = 404


class ConflictError(ServiceError):
    """A reload found a version it refuses to serve (hash mismatch, load failure): 409."""

    status = 409


class BodyTooLargeError(ServiceError):
    """The request body is over ``serving.max_body_bytes``: 413."""

    status = 413


class BodyTimeoutError(ServiceError):
    """The client did not send the body it announced within ``serving.body_timeout_seconds``: 408."""

    status = 408


class UnsupportedMediaTypeError(ServiceError):
    """The body is not declared ``application/json``: 415."""

    status = 415


class NoModelError(ServiceError):
    """No model is loaded (yet), the service is draining, or the log cannot take records: 503."""

    status = 503


class InvalidInputError(ServiceError):
    """The body broke the request's rules: 422 with one entry per problem."""

    status = 422

    def __init__(self, problems: Sequence[Mapping[str, Any]]) -> None:
        super().__init__("; ".join(f"{p['field']}: {p['msg']}" for p in problems))
        self.problems = list(problems)


# ------------------------------------------------------------------ problem entries


def _text(value: object) -> str:
    """A short, always-encodable rendering of a name or message from the request."""
    text = str(value)
    if len(text) > _MAX_TEXT:
        text = text[:_MAX_TEXT] + "..."
    # lone surrogates (valid in JSON "\ud800", invalid in UTF-8) are escaped, never echoed raw
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def problem(loc: Sequence[str | int], msg: str, type_: str, *, row: int | None = None) -> dict[str, Any]:
    """One 422 entry: where (``loc``), which field, what rule (``type``) and why (``msg``)."""
    clean_loc: list[str | int] = [part if isinstance(part, int) else _text(part) for part in loc]
    parts = clean_loc[1:] if clean_loc[:1] == ["body"] else clean_loc
    fallback = "body"
    if parts[:1] == ["applicants"]:
        fallback = "applicants"
        parts = parts[2:] if len(parts) > 1 and isinstance(parts[1], int) else parts[1:]
    names = [part for part in parts if isinstance(part, str)]
    entry: dict[str, Any] = {
        "loc": clean_loc,
        "field": names[-1] if names else fallback,
        "msg": _text(msg),
        "type": type_,
    }
    if row is not None:
        entry["row"] = row
    return entry


def problems_from_pydantic(errors: Iterable[Mapping[str, Any]], *, prefix: Sequence[str | int] = ("body",)) -> list:
    """Pydantic's errors as 422 entries; a batch row's index becomes ``row``."""
    out = []
    for err in errors:
        loc = [*prefix, *err.get("loc", ())]
        row = loc[2] if len(loc) > 2 and loc[1] == "applicants" and isinstance(loc[2], int) else None
        out.append(problem(loc, err.get("msg", "invalid"), str(err.get("type", "value_error")), row=row))
    return out


# ------------------------------------------------------------------ documented bodies


class ErrorEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    loc: list[str | int]
    field: str
    msg: str
    type: str
    row: int | None = None


class ValidationErrorBody(BaseModel):
    """422: each entry names the field (and batch row) and the rule broken."""

    model_config = ConfigDict(extra="forbid")

    detail: list[ErrorEntry]


class MessageBody(BaseModel):
    """Every other error: a sentence saying what went wrong."""

    model_config = ConfigDict(extra="allow")

    detail: str


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given status codes."""
    descriptions = {
        400: "Malformed JSON (not JSON, not UTF-8, or nested too deep)",
        401: "Missing bearer token",
        403: "Wrong bearer token",
        404: "Not found (admin routes answer 404 when no admin token is configured)",
        409: (
            "A conflict: the X-Request-ID already names another request, or one not yet answered (scoring); "
            "the registry's version was refused, the old one keeps serving (admin)"
        ),
        408: "The request body did not arrive within serving.body_timeout_seconds",
        413: "Request body over serving.max_body_bytes",
        415: "Content type is not application/json",
        422: "Invalid input: each entry names the field (and batch row) and the rule",
        503: "No model loaded, service draining, registry unreachable, or prediction log full",
    }
    return {
        code: {"model": ValidationErrorBody if code == 422 else MessageBody, "description": descriptions[code]}
        for code in codes
    }


# ------------------------------------------------------------------ mapping to HTTP


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """orjson-encoded JSON (fast, and NaN-free: orjson writes non-finite floats as null)."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def error_response(exc: ServiceError) -> Response:
    if isinstance(exc, InvalidInputError):
        return json_response({"detail": exc.problems}, exc.status)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, UnauthorizedError) else None
    extra = getattr(exc, "extra", None) or {}
    return json_response({"detail": exc.detail, **extra}, exc.status, headers)


async def _service_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return error_response(exc)


async def _request_validation(_: Request, exc: Exception) -> Response:
    # FastAPI's own body/query validation (admin bodies, query parameters)
    assert isinstance(exc, RequestValidationError)
    return json_response({"detail": problems_from_pydantic(exc.errors(), prefix=())}, 422)


async def _http_exception(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return json_response({"detail": _text(exc.detail)}, exc.status_code, exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Only a bug gets here: log it in full, answer without internals.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return json_response({"detail": "internal error"}, 500)


def install(app: FastAPI) -> None:
    """Register every mapping on ``app``."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(Exception, _unexpected)
