"""The ceiling for the HTTP benchmark: a FastAPI endpoint that answers a constant.

``uvicorn bench.constant_app:app``. Same framework, server and JSON body size
as the scoring service, no validation and no model: the gap between this and
the service is what validation, scoring and logging cost.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI
from starlette.responses import Response

_ANSWER = orjson.dumps(
    {
        "request_id": "0" * 32,
        "model": {"name": "credit-risk", "version": "1", "alias": "production"},
        "probability_of_default": 0.1841,
        "score": 530,
        "risk_band": "D",
        "decision": "review",
        "decision_policy_version": "constant",
        "reasons": [],
        "scored_at": "2026-01-01T00:00:00.000Z",
    }
)

app = FastAPI(title="constant answer")


@app.post("/v1/predict")
async def predict() -> Response:
    return Response(_ANSWER, media_type="application/json")
