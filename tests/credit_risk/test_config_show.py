"""``python -m credit_risk.config --show``: the effective configuration and where each value came from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from credit_risk.config import PROJECT_ROOT, Settings, load_project_config
from credit_risk.config_show import effective, render
from tests.conftest import write_config_dir

pytestmark = pytest.mark.code

EXAMPLE = PROJECT_ROOT / "examples" / "home_equity" / "config"


def _entries(config_dir: Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    config = load_project_config(config_dir)
    return {f"{e.file}:{e.key}": e.source for e in effective(config, environ or {})}


def test_a_key_the_file_states_shows_the_file_and_line() -> None:
    sources = _entries(EXAMPLE)
    text = (EXAMPLE / "model_config.yaml").read_text().splitlines()
    source = sources["model_config.yaml:registry.model_name"]
    path, line = source.rsplit(":", 1)
    assert Path(path) == EXAMPLE / "model_config.yaml"
    assert text[int(line) - 1].strip() == "model_name: home-equity", source


def test_a_key_the_file_leaves_out_shows_default() -> None:
    sources = _entries(EXAMPLE)
    assert sources["model_config.yaml:serving.port"] == "default"
    assert sources["training.yaml:cv.folds"] == "default"


def test_an_environment_override_is_marked_as_such(tmp_path: Path) -> None:
    config = load_project_config(EXAMPLE)
    entries = effective(config, {"CREDIT_RISK_LOG_DIR": str(tmp_path)})
    (log_dir,) = [e for e in entries if e.key == "prediction_log.directory"]
    assert (log_dir.value, log_dir.source) == (str(tmp_path), "env CREDIT_RISK_LOG_DIR")


def test_secrets_are_shown_as_set_never_printed() -> None:
    config = load_project_config(EXAMPLE)
    text = render(config, Settings(), {"CREDIT_RISK_ADMIN_TOKEN": "ops:s3cret-value"})
    assert "s3cret-value" not in text
    assert "CREDIT_RISK_ADMIN_TOKEN = set" in text


def test_the_command_refuses_an_unknown_key_naming_it(tmp_path: Path) -> None:
    config_dir = write_config_dir(tmp_path / "config", model={"serving": {"prot": 8000}})
    done = subprocess.run(
        [sys.executable, "-m", "credit_risk.config", "--show", "--config-dir", str(config_dir)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "serving.prot" in done.stderr and "model_config.yaml" in done.stderr, done.stderr
