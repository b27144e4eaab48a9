"""The hot path's deadlines (serving.deadlines) behave as ``asyncio.timeout`` on the service's own loop."""

from __future__ import annotations

import asyncio
import time

import pytest
import uvloop

from serving.deadlines import TICK, Deadlines

pytestmark = pytest.mark.code


def test_an_await_past_its_deadline_raises_timeout_and_the_task_goes_on_uncancelled() -> None:
    deadlines = Deadlines()

    async def main() -> tuple[float, int, str]:
        started = time.monotonic()
        with pytest.raises(TimeoutError), deadlines.within(0.2):
            await asyncio.sleep(5)
        took = time.monotonic() - started
        cancelling = asyncio.current_task().cancelling()  # type: ignore[union-attr]
        await asyncio.sleep(0.3)  # no stray cancellation arrives later
        return took, cancelling, "went on"

    took, cancelling, after = uvloop.run(main())
    assert 0.2 <= took < 0.2 + TICK + 0.2, took
    assert cancelling == 0 and after == "went on"


def test_an_await_in_time_returns_and_is_never_cancelled_after() -> None:
    deadlines = Deadlines()

    async def main() -> list[str]:
        done = []
        for _ in range(50):  # many short awaits, each well within its deadline
            with deadlines.within(0.15):
                await asyncio.sleep(0)
            done.append("ok")
        await asyncio.sleep(0.4)  # past every deadline: the finished watches are forgotten
        return done

    assert uvloop.run(main()) == ["ok"] * 50


def test_only_the_awaits_past_their_deadline_time_out_and_an_outside_cancel_stays_a_cancel() -> None:
    deadlines = Deadlines()

    async def waits(seconds: float, deadline: float) -> str:
        try:
            with deadlines.within(deadline):
                await asyncio.sleep(seconds)
        except TimeoutError:
            return "timed out"
        return "done"

    async def main() -> tuple[list[str], bool]:
        results = await asyncio.gather(*(waits(0.05, 2.0) for _ in range(5)), *(waits(5, 0.2) for _ in range(5)))
        cancelled = asyncio.ensure_future(waits(5, 2.0))
        await asyncio.sleep(0.05)
        cancelled.cancel()
        try:
            await cancelled
        except asyncio.CancelledError:
            return list(results), True
        return list(results), False

    results, cancel_propagated = uvloop.run(main())
    assert results == ["done"] * 5 + ["timed out"] * 5
    assert cancel_propagated, "a cancellation from outside was turned into something else"


def test_a_second_loop_gets_its_own_timer() -> None:
    deadlines = Deadlines()

    async def once() -> str:
        try:
            with deadlines.within(0.1):
                await asyncio.sleep(3)
        except TimeoutError:
            return "timed out"
        return "slept"

    assert uvloop.run(once()) == "timed out"
    assert asyncio.run(once()) == "timed out"  # a new loop (a test client's, a restart): not the closed one's timer
