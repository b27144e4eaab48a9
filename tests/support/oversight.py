"""Helpers for the oversight tests: applicants the session's model refers or declines, a case's wait."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import httpx


def applicants_deciding(
    post: Callable[..., Any], example: dict[str, Any], decision: str, *, count: int = 1
) -> list[dict[str, Any]]:
    """Applicants (variations of the schema's example) that the served model decides ``decision``."""
    variations = itertools.product(
        ("overdrawn", "below_200_dm", "no_account"),
        (6, 12, 24, 36, 48, 60),
        (1000, 3000, 6000, 10000, 15000),
        (1, 2, 3, 4),
    )
    found = []
    for checking, months, amount, rate in variations:
        applicant = {
            **example,
            "status_of_existing_checking_account": checking,
            "duration_in_month": months,
            "credit_amount": amount,
            "installment_rate_in_percentage_of_disposable_income": rate,
        }
        response = post("/v1/predict?reasons=false", json=applicant)
        assert response.status_code == 200, response.text
        if response.json()["decision"] == decision:
            found.append(applicant)
            if len(found) == count:
                return found
    raise AssertionError(f"no variation of the example is decided {decision!r} by the session's model")


def wait_for(check: Callable[[], Any], *, timeout: float = 20.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def queue_ids(client: httpx.Client | Any, token: str, **query: Any) -> list[int]:
    response = client.get("/v1/cases", params={"page_size": 500, **query}, headers=bearer(token))
    assert response.status_code == 200, response.text
    return [case["id"] for case in response.json()["cases"]]
