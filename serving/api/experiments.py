"""Experiments: start and stop one (admin), and read them with their live comparison (public,
aggregate figures only, like ``/v1/monitoring``). The logic is :mod:`credit_risk.experiments`'."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from credit_risk import registry
from credit_risk.decision_log.paths import resolve_log_dir
from credit_risk.experiments import control
from credit_risk.experiments.compare import experiment_report
from credit_risk.experiments.model import find_experiment, list_experiments
from credit_risk.outcomes.paths import resolve_outcomes_dir
from serving.api.deps import Caller, Runtime, json_body, require_admin, require_json, runtime_of
from serving.errors import (
    ConflictError,
    NoModelError,
    NotFoundError,
    error_responses,
    json_response,
)

log = logging.getLogger(__name__)

_ID = Path(pattern=r"^exp-[0-9a-f]{12}$", description="The experiment's id (exp-...)")


class ExperimentIn(BaseModel):
    """A challenger to run beside the served version."""

    model_config = ConfigDict(extra="forbid")
    challenger_version: str = Field(pattern=r"^[1-9][0-9]{0,8}$", examples=["2"])
    mode: Literal["shadow", "split"] = Field(
        description="shadow: the challenger scores beside the champion, logged only; split: it decides for its share"
    )
    share: float = Field(gt=0, le=1, description="The share of applicants shadowed, or decided by the challenger")
    reason: str = Field(min_length=1, max_length=500, examples=["shadow v2 before the quarterly refresh"])


class StopIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500, examples=["enough applicants"])


async def _call(call: Callable[[], Any]) -> Any:
    try:
        return await run_in_threadpool(call)
    except control.ExperimentNotFound as exc:
        raise NotFoundError(str(exc)) from None
    except (control.ExperimentRefused, registry.RegistryError) as exc:
        raise ConflictError(str(exc)) from None
    except Exception as exc:
        log.exception("experiment action failed")
        raise NoModelError(f"registry unavailable: {str(exc)[:300]}") from None


def _client(runtime: Runtime) -> Any:
    return registry.connect(runtime.settings, runtime.config.root)


def experiments_router() -> APIRouter:
    router = APIRouter(tags=["experiments"])
    admin_errors = error_responses(400, 401, 403, 404, 409, 413, 415, 422, 503)

    @router.post(
        "/v1/admin/experiments",
        summary="Start a champion/challenger experiment (one at a time); recorded in the ledger",
        response_model=None,
        status_code=201,
        responses={201: {"description": "The experiment, running"}, **admin_errors},
        openapi_extra={"requestBody": _body(ExperimentIn)},
    )
    async def start(request: Request, caller: Annotated[Caller, Depends(require_admin)]) -> Response:
        require_json(request)
        body = json_body(await request.body(), ExperimentIn)
        runtime = caller.runtime
        follower = runtime.experiment
        if follower is None:
            raise NoModelError("the service is starting")

        def act() -> Any:
            return control.start_experiment(
                _client(runtime),
                runtime.config,
                challenger_version=body.challenger_version,
                mode=body.mode,
                share=body.share,
                reason=body.reason,
                actor=caller.actor,
                verify=follower.verify,
            )

        experiment = await _call(act)
        await run_in_threadpool(runtime.refresh_controls)  # this worker follows at once; the others at their poll
        return json_response({"experiment": experiment.to_json(), "running_here": follower.running is not None}, 201)

    @router.post(
        "/v1/admin/experiments/{experiment_id}/stop",
        summary="Stop the running experiment: every decision is the champion's again",
        response_model=None,
        responses={200: {"description": "The experiment, stopped"}, **admin_errors},
        openapi_extra={"requestBody": _body(StopIn)},
    )
    async def stop(
        request: Request, experiment_id: Annotated[str, _ID], caller: Annotated[Caller, Depends(require_admin)]
    ) -> Response:
        require_json(request)
        body = json_body(await request.body(), StopIn)
        runtime = caller.runtime

        def act() -> Any:
            return control.stop_experiment(
                _client(runtime), runtime.config, experiment_id=experiment_id, reason=body.reason, actor=caller.actor
            )

        experiment = await _call(act)
        await run_in_threadpool(runtime.refresh_controls)
        return json_response({"experiment": experiment.to_json()})

    @router.get(
        "/v1/experiments",
        summary="Every experiment of the served model, newest first, and what this worker runs",
        response_model=None,
        responses={200: {"description": "The experiments"}, **error_responses(503)},
    )
    async def list_all(request: Request) -> Response:
        runtime = runtime_of(request)
        name = runtime.config.model.registry.model_name
        found = await _call(lambda: list_experiments(_client(runtime), name))
        follower = runtime.experiment
        running = follower.running if follower is not None else None
        return json_response(
            {
                "experiments": [e.to_json() for e in found],
                "worker_pid": os.getpid(),  # which worker answered: each follows the ledger on its own
                "running_here": running.experiment.id if running else None,
                "failure_here": follower.failure if follower is not None else None,
            }
        )

    @router.get(
        "/v1/experiments/{experiment_id}",
        summary="One experiment and the live comparison of its arms (and outcomes once they mature)",
        response_model=None,
        responses={200: {"description": "The experiment and its report"}, **error_responses(404, 422, 503)},
    )
    async def one(request: Request, experiment_id: Annotated[str, _ID]) -> Response:
        runtime = runtime_of(request)
        config = runtime.config
        name = config.model.registry.model_name

        def read() -> Any:
            experiment = find_experiment(_client(runtime), name, experiment_id)
            if experiment is None:
                raise control.ExperimentNotFound(f"no experiment {experiment_id!r}")
            log_dir = resolve_log_dir(config, runtime.settings)
            report = experiment_report(
                config, experiment, log_dir=log_dir, outcomes_dir=resolve_outcomes_dir(config, log_dir)
            )
            return {"experiment": experiment.to_json(), "report": report.model_dump(mode="json")}

        return json_response(await _call(read))

    return router


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}
