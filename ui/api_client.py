"""The UI's only way to the scoring service: a small HTTP client with typed errors.

Every page calls the API through :class:`ApiClient`; no page imports the model
or MLflow, so every prediction the UI shows was scored and logged by the
service. Failures are mapped to a few exception types that the pages turn
into plain messages (never a traceback).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from ui.form_schema import FormSchema, SchemaError, read_schema


class ApiError(Exception):
    """Base of every error the client raises; ``str()`` is the technical account of what happened.

    ``status`` and ``body`` keep the HTTP answer (None when there was none), so a page can read
    what an admin action did even when the service answered with an error.
    """

    status: int | None = None
    body: Any = None


class ApiUnavailableError(ApiError):
    """The service could not be reached (refused, timed out, DNS)."""


class NoModelServedError(ApiError):
    """The service is up but has no model loaded (HTTP 503)."""


class NotFoundError(ApiError):
    """The resource does not exist (HTTP 404), e.g. no monitoring summary yet."""


class UnauthorizedError(ApiError):
    """An admin call without a valid token (HTTP 401/403), or admin actions disabled (404)."""


@dataclass(frozen=True)
class Problem:
    """One rejected value: which field (and batch row, if any) and the rule it broke."""

    field: str
    message: str
    row: int | None = None

    def __str__(self) -> str:
        where = f"row {self.row}, " if self.row is not None else ""
        return f"{where}{self.field}: {self.message}"


class RequestRejectedError(ApiError):
    """The service refused the input (HTTP 422 and other 4xx); ``problems`` names each field and rule."""

    def __init__(self, message: str, problems: Sequence[Problem] = (), *, status: int = 422) -> None:
        super().__init__(message)
        self.problems = tuple(problems)
        self.status = status

    def names(self, field: str) -> bool:
        """True when one of the problems is about ``field`` (e.g. a key an older service does not know)."""
        return any(p.field == field for p in self.problems)


class ServiceError(ApiError):
    """An answer the UI cannot use (5xx other than 503, or a body that is not the contract's JSON)."""


def _detail_text(detail: Any) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, Mapping):
        return str(detail.get("msg") or detail.get("reason") or detail)
    if isinstance(detail, list):
        return "; ".join(_detail_text(item) for item in detail)
    return str(detail)


def parse_problems(detail: Any) -> list[Problem]:
    """Read FastAPI-style 422 details (``loc``, ``field``, ``msg``) into :class:`Problem` s.

    In a batch the location is ``["body", "applicants", <row>, <field>]``; a
    ``row`` key, when the service sends one, wins.
    """
    if not isinstance(detail, list):
        return [Problem(field="request", message=_detail_text(detail))] if detail else []
    problems = []
    for item in detail:
        if not isinstance(item, Mapping):
            problems.append(Problem(field="request", message=str(item)))
            continue
        loc = [part for part in item.get("loc", []) if part not in ("body", "applicants")]
        row = item.get("row")
        if row is None:
            row = next((part for part in loc if isinstance(part, int)), None)
        names = [str(part) for part in loc if not isinstance(part, int)]
        field = item.get("field") or (names[-1] if names else "request")
        problems.append(Problem(field=str(field), message=str(item.get("msg", item)), row=row))
    return problems


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class ApiClient:
    """Typed calls to the scoring API (see the API contract in the README)."""

    def __init__(self, base_url: str, *, timeout: float = 10.0, admin_timeout: float = 300.0) -> None:
        self.base_url = base_url.rstrip("/")
        # Promotion evaluates both models on the holdout: admin calls get a longer timeout.
        self._admin_timeout = admin_timeout
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------ plumbing

    def _send(self, method: str, path: str, *, json: Any = None, token: str | None = None) -> httpx.Response:
        """The HTTP exchange; a service that cannot be reached or does not answer in time is ApiUnavailableError."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            if token is None:
                return self._http.request(method, path, json=json)
            return self._http.request(method, path, json=json, headers=headers, timeout=self._admin_timeout)
        except httpx.TimeoutException as exc:
            message = f"The scoring service at {self.base_url} did not answer in time ({exc})."
            raise ApiUnavailableError(message) from exc
        except httpx.TransportError as exc:
            raise ApiUnavailableError(f"The scoring service at {self.base_url} cannot be reached ({exc}).") from exc

    def _request(self, method: str, path: str, *, json: Any = None, token: str | None = None) -> Any:
        response = self._send(method, path, json=json, token=token)
        try:
            return self._decode(response, admin=token is not None)
        except ApiError as exc:
            exc.status, exc.body = response.status_code, _json_or_none(response)
            raise

    def _decode(self, response: httpx.Response, *, admin: bool) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = None
        detail = body.get("detail") if isinstance(body, Mapping) else None
        status = response.status_code
        if status < 300:
            if body is None:
                raise ServiceError(f"{response.request.url.path} answered HTTP {status} without a JSON body.")
            return body
        text = _detail_text(detail) if detail else response.reason_phrase
        if status == 503:
            raise NoModelServedError(f"The scoring service has no model to serve right now: {text}")
        if status in (401, 403) or (status == 404 and admin):
            raise UnauthorizedError(
                f"Admin action not available (HTTP 404: {text}). The service answers 404 to admin calls "
                "when it has no admin token configured."
                if status == 404
                else f"The admin token was refused (HTTP {status}): {text}"
            )
        if status == 404:
            raise NotFoundError(text)
        if 400 <= status < 500:
            problems = parse_problems(detail)
            message = f"The service refused the request (HTTP {status}): {text}"
            raise RequestRejectedError(message, problems, status=status)
        raise ServiceError(f"The scoring service failed (HTTP {status}): {text}")

    # ------------------------------------------------------------ endpoints

    def model_info(self) -> dict[str, Any]:
        """``GET /v1/model``: the served version, its metrics, schema, policy and bands."""
        return self._request("GET", "/v1/model")

    def feature_schema(self, info: Mapping[str, Any]) -> FormSchema:
        """The served model's feature schema, from a ``model_info()`` answer."""
        try:
            return read_schema(info)
        except SchemaError as exc:
            raise ServiceError(f"/v1/model sent no usable feature_schema: {exc}") from exc

    def start_job(self, *, token: str, job: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /v1/admin/jobs``: run the monitor or the performance report now (the run, state running)."""
        return self._request("POST", "/v1/admin/jobs", json={"job": job, "params": dict(params)}, token=token)

    def job(self, *, token: str, run_id: str) -> dict[str, Any]:
        """``GET /v1/admin/jobs/{id}``: a job run's state, last lines of output and MLflow run."""
        return self._request("GET", f"/v1/admin/jobs/{run_id}", token=token)

    def post_outcomes(self, *, token: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """``POST /v1/outcomes``: one batch of loan outcomes (all rows checked; any bad one refuses the batch)."""
        return self._request("POST", "/v1/outcomes", json={"outcomes": [dict(r) for r in rows]}, token=token)

    def whoami(self, token: str) -> dict[str, Any]:
        """``GET /v1/me``: the role token's name, role and what it may do (UnauthorizedError when refused)."""
        return self._request("GET", "/v1/me", token=token)

    def predict(self, applicant: Mapping[str, Any], *, recourse: bool = False) -> dict[str, Any]:
        """``POST /v1/predict``: one applicant -> probability, score, band, decision, reasons; with
        ``recourse``, also what would change a decline or a referral (``recourse``, ``recourse_note``)."""
        path = "/v1/predict?recourse=true" if recourse else "/v1/predict"
        return self._request("POST", path, json=dict(applicant))

    def predict_batch(self, applicants: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """``POST /v1/predict/batch``: results in the order sent."""
        return self._request("POST", "/v1/predict/batch", json={"applicants": [dict(a) for a in applicants]})

    def monitoring(self) -> dict[str, Any]:
        """``GET /v1/monitoring``: the latest monitoring summary (NotFoundError when none exists)."""
        return self._request("GET", "/v1/monitoring")

    def registry(self) -> dict[str, Any]:
        """``GET /v1/registry``: versions, aliases and alias history."""
        return self._request("GET", "/v1/registry")

    def validation_report_data(self, path: str) -> dict[str, Any]:
        """The data the report at ``path`` was rendered from (as registered), for the page to show as its own."""
        return self._request("GET", f"{path}/data")

    def validation_report(self, path: str) -> str:
        """The HTML validation report at ``path`` (a version's ``validation_report`` in ``/v1/registry``)."""
        response = self._send("GET", path)
        if response.status_code >= 300:
            self._decode(response, admin=False)  # raises the API error the status and detail name
        if "html" not in response.headers.get("content-type", ""):
            raise ServiceError(f"{path} answered HTTP {response.status_code} without an HTML report")
        return response.text

    def promote(
        self, *, token: str, version: str | None, reason: str, force: bool = False, dry_run: bool = False
    ) -> dict[str, Any]:
        """``POST /v1/admin/promote``; a refused gate raises :class:`RequestRejectedError` with its text.

        ``dry_run`` asks for the gate results without moving the alias; the key is sent only then,
        so a real promotion reads the same to a service that predates dry runs.
        """
        body: dict[str, Any] = {"version": version, "reason": reason, "force": force}
        if dry_run:
            body["dry_run"] = True
        return self._request("POST", "/v1/admin/promote", json=body, token=token)

    def rollback(self, *, token: str, version: str | None, reason: str) -> dict[str, Any]:
        """``POST /v1/admin/rollback`` to ``version`` (None: the previous holder of the alias)."""
        return self._request("POST", "/v1/admin/rollback", json={"version": version, "reason": reason}, token=token)

    # ------------------------------------------------------------ approvals and experiments

    def approvals(self) -> dict[str, Any]:
        """``GET /v1/approvals``: promotion requests and their state, newest first."""
        return self._request("GET", "/v1/approvals")

    def decide_approval(self, approval_id: str, *, approve: bool, token: str, reason: str) -> dict[str, Any]:
        """``POST /v1/approvals/{id}/approve`` or ``/reject`` with the approver's token and a reason."""
        verb = "approve" if approve else "reject"
        return self._request("POST", f"/v1/approvals/{approval_id}/{verb}", json={"reason": reason}, token=token)

    def experiments(self) -> dict[str, Any]:
        """``GET /v1/experiments``: every experiment, newest first."""
        return self._request("GET", "/v1/experiments")

    def experiment(self, experiment_id: str) -> dict[str, Any]:
        """``GET /v1/experiments/{id}``: the experiment and the live comparison of its arms."""
        return self._request("GET", f"/v1/experiments/{experiment_id}")

    def start_experiment(
        self, *, token: str, challenger_version: str, mode: str, share: float, reason: str
    ) -> dict[str, Any]:
        """``POST /v1/admin/experiments``: one experiment at a time."""
        body = {"challenger_version": challenger_version, "mode": mode, "share": share, "reason": reason}
        return self._request("POST", "/v1/admin/experiments", json=body, token=token)

    def stop_experiment(self, experiment_id: str, *, token: str, reason: str) -> dict[str, Any]:
        """``POST /v1/admin/experiments/{id}/stop``."""
        return self._request(
            "POST", f"/v1/admin/experiments/{experiment_id}/stop", json={"reason": reason}, token=token
        )
