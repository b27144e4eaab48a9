"""``make up``'s script: the API and the UI on the ports asked for, the URLs it really serves, and a
stop that drains both and exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from credit_risk.config import PROJECT_ROOT
from tests.conftest import TrainedModel
from tests.support.processes import free_port, wait_for_http

pytestmark = pytest.mark.integration


def test_run_services_serves_on_the_port_asked_for_says_so_and_exits_0_on_sigterm(
    trained: TrainedModel, tmp_path: Path
) -> None:
    api_port, ui_port = free_port(), free_port()
    configured = trained.store.config.model.serving.port
    assert api_port != configured, "the test needs a port other than the configured one"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": trained.store.uri,
        "CREDIT_RISK_CONFIG_DIR": str(trained.store.settings.config_dir),
        "CREDIT_RISK_LOG_DIR": str(tmp_path / "logs"),
        "PORT": str(api_port),
        "UI_PORT": str(ui_port),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CREDIT_RISK_API_URL", None)
    log_path = tmp_path / "services.log"
    with log_path.open("w") as out:
        process = subprocess.Popen(
            ["bash", "scripts/run-services.sh"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            alive = lambda: process.poll() is None  # noqa: E731
            wait_for_http(f"http://127.0.0.1:{api_port}/ready", timeout=120, is_alive=alive)
            wait_for_http(f"http://127.0.0.1:{ui_port}/_stcore/health", timeout=120, is_alive=alive)
            process.send_signal(signal.SIGTERM)  # as a service manager stops it: the script, not its group
            code = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
    text = log_path.read_text()
    assert f"API on http://127.0.0.1:{api_port}" in text, text[-3000:]
    assert code == 0, f"a requested stop must exit 0 after the drain, not {code}\n{text[-3000:]}"
    assert "stopped: the API and the UI have shut down cleanly" in text
    with pytest.raises(OSError):
        wait_for_http(f"http://127.0.0.1:{api_port}/health", timeout=1)
