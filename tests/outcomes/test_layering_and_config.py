"""The outcome code sits where both the service and the jobs can use it; its configuration fails clearly."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from credit_risk.config import PROJECT_ROOT, ConfigError, load_project_config
from tests.conftest import write_config_dir

pytestmark = pytest.mark.code

CORE = [
    PROJECT_ROOT / "credit_risk" / "performance.py",
    *sorted((PROJECT_ROOT / "credit_risk" / "outcomes").glob("*.py")),
]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_the_core_outcome_modules_import_neither_serving_nor_pipelines(path: Path) -> None:
    assert not _imports(path) & {"serving", "pipelines"}, path


def test_the_outcome_jobs_and_simulator_do_not_import_the_service() -> None:
    jobs = [PROJECT_ROOT / "pipelines" / "outcomes.py", PROJECT_ROOT / "pipelines" / "outcome_simulator.py"]
    jobs += sorted((PROJECT_ROOT / "pipelines" / "performance").glob("*.py"))
    assert all("serving" not in _imports(path) for path in jobs)


@pytest.mark.parametrize(
    ("file", "overrides", "key"),
    [
        ("model", {"performance": {"min_auc": 1.5}}, "performance.min_auc"),
        ("model", {"outcomes": {"max_batch_size": 0}}, "outcomes.max_batch_size"),
        ("model", {"outcomes": {"maturity": 30}}, "outcomes.maturity"),
        ("training", {"data": {"path": "x.csv", "holdout_fraction": 0.2, "source": "warehouse"}}, "data.source"),
        (
            "training",
            {"data": {"path": "x.csv", "holdout_fraction": 0.2, "production": {"min_outcomes": 1}}},
            "data.production.min_outcomes",
        ),
    ],
)
def test_a_bad_outcome_setting_fails_at_start_naming_the_key(
    tmp_path: Path, file: str, overrides: dict, key: str
) -> None:
    config_dir = write_config_dir(tmp_path / "config", **{file: overrides})
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_project_config(config_dir)


def test_the_committed_config_has_the_outcome_sections() -> None:
    config = load_project_config()
    assert config.model.outcomes.maturity_days == 365
    assert config.model.performance.min_outcomes >= 1
    assert config.training.data.source == "file" and config.training.data.time_column is None
