"""The monitor reads the prediction log through the core package, never through the web service."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from credit_risk.config import PROJECT_ROOT

pytestmark = pytest.mark.code


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):  # function-level imports count too
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _offenders(package: str, forbidden: str) -> dict[str, list[str]]:
    found = {
        str(path.relative_to(PROJECT_ROOT)): sorted(m for m in _imported_modules(path) if m.split(".")[0] == forbidden)
        for path in sorted((PROJECT_ROOT / package).rglob("*.py"))
    }
    return {path: modules for path, modules in found.items() if modules}


def test_no_pipeline_module_imports_the_serving_package() -> None:
    offenders = _offenders("pipelines", "serving")
    assert not offenders, f"pipelines/ must not import serving/ (move what both need to credit_risk/): {offenders}"


def test_no_serving_module_imports_the_pipelines_package() -> None:
    # the service runs only vetted, core code: lifecycle, log format and scoring live in credit_risk/
    offenders = _offenders("serving", "pipelines")
    assert not offenders, f"serving/ must not import pipelines/ (move what both need to credit_risk/): {offenders}"


def test_the_core_decision_log_imports_neither_serving_nor_pipelines() -> None:
    for path in sorted((PROJECT_ROOT / "credit_risk" / "decision_log").rglob("*.py")):
        bad = sorted(m for m in _imported_modules(path) if m.split(".")[0] in ("serving", "pipelines"))
        assert not bad, f"{path.name} imports {bad}"
