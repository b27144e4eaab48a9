"""``GET /v1/monitoring``: the latest summary written by the drift monitor, for the UI.

The route reads the file the monitor job (``pipelines/monitor/``) writes
atomically; it computes nothing itself. It finds the configuration where the
app keeps it: ``app.state.runtime`` (``.config`` and ``.settings``, as
``serving.app.create_app`` sets them), or ``app.state.config`` and
``app.state.log_dir``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict

from credit_risk.config import ProjectConfig
from credit_risk.decision_log.paths import resolve_log_dir, summary_path

NO_SUMMARY = "no monitoring summary yet"

router = APIRouter(tags=["monitoring"])


class MonitoringWindow(BaseModel):
    start: str
    end: str


class MonitoredModel(BaseModel):
    name: str
    version: str


class MonitoringSummary(BaseModel):
    """The documented top of the summary; the monitor adds more figures (PSI per field, time series...)."""

    model_config = ConfigDict(extra="allow")

    summary_version: int
    generated_at: str
    window: MonitoringWindow
    model: MonitoredModel
    status: Literal["ok", "alert", "no_data", "insufficient_data"]
    alert_level: Literal["none", "moderate", "major"]
    alerts: list[dict[str, Any]]
    volume: int
    duplicates_dropped: int = 0  # log rows of one decision written twice (an older release's), counted once


class NoSummary(BaseModel):
    detail: str


def summary_path_for(config: ProjectConfig, log_dir: Path) -> Path:
    """Where the latest summary is, for this configuration and log directory."""
    return summary_path(config.model.monitoring, Path(log_dir), config.root)


@router.get(
    "/v1/monitoring",
    response_model=None,
    responses={
        200: {"model": MonitoringSummary, "description": "The latest monitoring summary"},
        404: {"model": NoSummary, "description": "The monitor has not run yet"},
    },
    summary="Latest drift and health summary",
)
def get_monitoring(request: Request) -> Response:
    """The latest summary as the monitor wrote it (404 until the monitor has run once)."""
    located = _summary_location(request.app.state)
    if located is None:
        raise HTTPException(status_code=404, detail=NO_SUMMARY)
    try:
        body = located.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise HTTPException(status_code=404, detail=NO_SUMMARY) from None
    return Response(content=body, media_type="application/json")


def _summary_location(state: Any) -> Path | None:
    """From ``state.config``/``state.log_dir``, or the service's ``state.runtime`` (config and settings)."""
    config: ProjectConfig | None = getattr(state, "config", None)
    log_dir: Path | None = getattr(state, "log_dir", None)
    runtime = getattr(state, "runtime", None)
    if config is None and runtime is not None:
        config = runtime.config
        log_dir = log_dir or resolve_log_dir(config, runtime.settings)
    if config is None:
        return None
    return summary_path_for(config, Path(log_dir or config.resolve(config.model.prediction_log.directory)))
