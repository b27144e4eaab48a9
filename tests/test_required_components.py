"""Under CI=true a test whose real component is missing fails; nothing in the suite skips around that."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.required import require_component

pytestmark = pytest.mark.code

TESTS = Path(__file__).resolve().parent


def test_a_missing_component_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and a required component is missing: no chromium"):
        require_component("no chromium")


def test_a_missing_component_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no chromium"):
        require_component("no chromium")


def test_a_present_component_neither_fails_nor_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    require_component(None)


def test_no_test_skips_around_the_rule() -> None:
    """Skips go through require_component; the only other one is the opt-in screenshot refresh."""
    pattern = re.compile(r"pytest\.skip\(|importorskip\(|mark\.skipif\(")
    offenders = []
    for path in TESTS.rglob("*.py"):
        if path.name in {"required.py", Path(__file__).name}:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and "CREDIT_RISK_SCREENSHOTS" not in line:
                offenders.append(f"{path.relative_to(TESTS)}:{number}: {line.strip()}")
    assert not offenders, "skip only through tests/support/required.py:\n" + "\n".join(offenders)
