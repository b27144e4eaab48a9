"""Job routes (admin): start the monitor or the performance report now, and follow it.

``POST /v1/admin/jobs {"job": "monitor"|"performance", "params": {...}}`` answers 202 with the run;
``GET /v1/admin/jobs/{id}`` its state, its last lines of output and, once finished, its MLflow run.
The job is the command's own code in a process of its own (:mod:`credit_risk.jobs`).
"""

from __future__ import annotations

import os
import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from credit_risk import registry
from credit_risk.config import PROJECT_ROOT
from credit_risk.decision_log.paths import resolve_log_dir
from credit_risk.jobs import JobError, JobRunner
from serving.api.deps import Caller, Runtime, body_doc, json_body, require_admin, require_json
from serving.errors import ConflictError, InvalidInputError, NotFoundError, error_responses, json_response, problem


class JobRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"job": "performance", "params": {"as_of": "2027-06-30"}}]},
    )

    job: str = Field(description="monitor or performance")
    params: dict[str, str | int] = Field(default_factory=dict, description="start, end; as_of, maturity_days")


_lock = threading.Lock()


def _runner(request: Request, runtime: Runtime) -> JobRunner:
    with _lock:
        runner = getattr(request.app.state, "job_runner", None)
        if runner is None:
            config, settings = runtime.config, runtime.settings
            log_dir = resolve_log_dir(config, settings)
            env = {
                **os.environ,
                "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri or registry.default_tracking_uri(config.root),
                "CREDIT_RISK_CONFIG_DIR": str(config.config_dir),
                "CREDIT_RISK_LOG_DIR": str(log_dir),
                "PYTHONPATH": str(PROJECT_ROOT),
            }
            env.pop("MLFLOW_RUN_ID", None)
            runner = request.app.state.job_runner = JobRunner(log_dir.parent / "jobs", env)
        return runner


def jobs_router() -> APIRouter:
    router = APIRouter(prefix="/v1/admin", tags=["admin"])

    @router.post(
        "/jobs",
        summary="Run the monitor or the performance report now, in the background (202 with the run)",
        response_model=None,
        responses={202: {"description": "Started"}, **error_responses(400, 401, 403, 404, 409, 415, 422)},
        openapi_extra=body_doc("JobRequest"),
    )
    async def start_job(request: Request, caller: Annotated[Caller, Depends(require_admin)]) -> Response:
        require_json(request)
        body = json_body(await request.body(), JobRequest)
        runner = _runner(request, caller.runtime)
        try:
            run = await run_in_threadpool(runner.start, body.job, dict(body.params), actor=caller.actor)
        except JobError as exc:
            if exc.conflict:
                raise ConflictError(str(exc)) from None
            field, _, message = str(exc).partition(": ")
            loc = ["body", *field.split(".")]
            raise InvalidInputError([problem(loc, message or str(exc), "value_error")]) from None
        access = caller.runtime.access
        access.record(actor=caller.name, role=caller.role, action=f"job:{run.job}", status=202, id=run.id)
        return json_response(run.to_json(), 202)

    @router.get(
        "/jobs/{run_id}",
        summary="A job run: its state, its last lines of output and its MLflow run",
        response_model=None,
        responses={200: {"description": "The run"}, **error_responses(401, 403, 404)},
    )
    async def get_job(
        request: Request,
        caller: Annotated[Caller, Depends(require_admin)],
        run_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The run's id")],
    ) -> Response:
        run = await run_in_threadpool(_runner(request, caller.runtime).get, run_id)
        if run is None:
            raise NotFoundError(f"no job run {run_id}")
        return json_response(run.to_json())

    return router
