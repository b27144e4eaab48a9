"""Every documented command, in its documented form, on a fresh temp store.

``docs/commands.yaml`` is the one list: the README, every page under docs/, the Makefile
and the MLproject are checked against it (nothing documented is missing from it, nothing in it is
undocumented), and the tier runs each entry in order as a user would type it:
``mlflow run . -e ...``, ``make ...``, ``python -m ...``; services are started,
probed, made to score one applicant and stopped with SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from credit_risk.config import PROJECT_ROOT
from tests.conftest import FAST_TRAINING, session_store_copy, write_config_dir
from tests.support.processes import free_port, wait_for_http

COMMANDS_FILE = PROJECT_ROOT / "docs" / "commands.yaml"
_BASE_KEY = re.compile(
    r"\b(make [a-z][a-z-]*|mlflow run (?:\. )?-e [a-z_]+|python -m [a-z_][a-z_.]*|uvicorn [a-z_.]+:app)"
)
JOB_TIMEOUT = 300
SERVICE_START_TIMEOUT = 120


@dataclass(frozen=True)
class Command:
    key: str
    run: str = ""
    kind: str = "job"
    exit: tuple[int, ...] = (0,)
    probe: tuple[str, ...] = ()
    score: bool = False
    not_run: str = ""
    sequence: str = ""  # the sequence it runs in (empty: documented only)

    @property
    def base(self) -> str:
        return base_key(self.key)


def base_key(text: str) -> str:
    match = _BASE_KEY.search(text)
    assert match, f"{text!r} names no command form the tier knows"
    return match.group(1).replace("mlflow run . -e", "mlflow run -e")


SEQUENCES = ("lifecycle", "operations", "files")


def load_commands() -> list[Command]:
    """Every entry: the two sequences' in their order, then the documented-only ones."""
    listed = yaml.safe_load(COMMANDS_FILE.read_text())
    assert set(listed) == {*SEQUENCES, "documented_only"}, f"{COMMANDS_FILE.name}: {sorted(listed)}"
    commands = []
    for section in (*SEQUENCES, "documented_only"):
        for entry in listed[section]:
            entry = dict(entry)
            entry["exit"] = tuple(entry.get("exit", (0,)))
            entry["probe"] = tuple(entry.get("probe", ()))
            commands.append(Command(**entry, sequence=section if section in SEQUENCES else ""))
    return commands


def code_in(markdown: Path) -> list[str]:
    """A page's code: fenced blocks and inline code spans (commands are written as code, prose is not)."""
    text = markdown.read_text()
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return blocks + re.findall(r"`([^`\n]+)`", prose)


def documented_pages() -> list[Path]:
    """The README and every page of the docs site."""
    return [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").rglob("*.md"))]


def documented_keys() -> dict[str, str]:
    """Every command form the README, the docs pages, the Makefile and the MLproject name, with where."""
    found: dict[str, str] = {}
    for page in documented_pages():
        where = str(page.relative_to(PROJECT_ROOT))
        for snippet in code_in(page):
            for match in _BASE_KEY.finditer(snippet):
                found.setdefault(base_key(match.group(1)), where)
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", makefile, re.MULTILINE)
    assert phony, "the Makefile declares its targets in .PHONY"
    for target in phony.group(1).split():
        found.setdefault(f"make {target}", "Makefile")
    entry_points = yaml.safe_load((PROJECT_ROOT / "MLproject").read_text())["entry_points"]
    for name in entry_points:
        found.setdefault(f"mlflow run -e {name}", "MLproject")
    return found


COMMANDS = load_commands()


@pytest.mark.code
def test_every_documented_command_is_in_the_list() -> None:
    listed = {command.base for command in COMMANDS}
    missing = {key: where for key, where in documented_keys().items() if key not in listed}
    assert not missing, f"documented but not in {COMMANDS_FILE.name} (add them so the tier runs them): {missing}"


@pytest.mark.code
def test_commands_named_only_in_a_docs_page_are_found() -> None:
    """The README is the front door; the pages under docs/ name most commands, and each counts."""
    documented = documented_keys()
    assert "python -m pipelines.outcome_simulator" not in (PROJECT_ROOT / "README.md").read_text()
    assert documented["python -m pipelines.outcome_simulator"] == "docs/outcomes.md"


@pytest.mark.code
def test_the_list_names_only_documented_commands() -> None:
    documented = documented_keys()
    extra = sorted({command.base for command in COMMANDS} - set(documented))
    assert not extra, f"{COMMANDS_FILE.name} lists commands nothing documents: {extra}"


@pytest.mark.code
def test_each_entry_either_runs_or_says_why_not() -> None:
    for command in COMMANDS:
        assert bool(command.run) != bool(command.not_run), f"{command.key}: give `run` or `not_run`, not both"
        assert bool(command.run) == bool(command.sequence), f"{command.key}: a command that runs is in a sequence"
        assert command.kind in {"job", "service"}, f"{command.key}: kind {command.kind!r}"
        if command.kind == "service" and command.run:
            assert command.probe, f"{command.key}: a service needs a probe URL"


# ------------------------------------------------------------------ the tier


@dataclass
class Workspace:
    tmp: Path
    env: dict[str, str]
    api_port: int
    ui_port: int
    answered: list[str] = field(default_factory=list)

    def fill(self, text: str) -> str:
        return text.format(
            python=shlex.quote(sys.executable), tmp=self.tmp, api_port=self.api_port, ui_port=self.ui_port
        )


def _workspace(tmp: Path) -> Workspace:
    """A fresh store, a fast training config and free ports, as environment a user would set."""
    api_port, ui_port = free_port(), free_port()
    config_dir = write_config_dir(tmp / "config", training=FAST_TRAINING)
    model_path = config_dir / "model_config.yaml"
    model = yaml.safe_load(model_path.read_text())
    model.setdefault("serving", {})["port"] = api_port
    model["serving"]["host"] = "127.0.0.1"
    model["serving"]["drain_grace_seconds"] = 0.2
    model_path.write_text(yaml.safe_dump(model, sort_keys=False))
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
        "CREDIT_RISK_CONFIG_DIR": str(config_dir),
        "CREDIT_RISK_LOG_DIR": str(tmp / "logs"),
        "CREDIT_RISK_API_URL": f"http://127.0.0.1:{api_port}",
        "UI_PORT": str(ui_port),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("MLFLOW_RUN_ID", None)
    return Workspace(tmp=tmp, env=env, api_port=api_port, ui_port=ui_port)


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Workspace]:
    """Each sequence's workspace, made when its first command runs (each sequence may run on another worker)."""

    class Workspaces(dict[str, Workspace]):
        def __missing__(self, sequence: str) -> Workspace:
            # `files` starts where a user who trained and promoted a model is (a copy of the session's
            # store); the others start empty, and their first commands train
            tmp = session_store_copy(tmp_path_factory) if sequence == "files" else None
            self[sequence] = _workspace(tmp or tmp_path_factory.mktemp(f"documented-{sequence}"))
            return self[sequence]

    return Workspaces()


def _run_job(command: Command, ws: Workspace) -> None:
    line = ws.fill(command.run)
    done = subprocess.run(
        line,
        shell=True,
        cwd=PROJECT_ROOT,
        env=ws.env,
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT,
        check=False,
    )
    assert done.returncode in command.exit, (
        f"`{line}` exited {done.returncode} (expected {list(command.exit)})\n"
        f"--- stdout ---\n{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-6000:]}"
    )


def _score_one(ws: Workspace) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{ws.api_port}/v1/model", timeout=10) as resp:
        schema = json.load(resp)["feature_schema"]
    from credit_risk.schema import FeatureSchema

    example = FeatureSchema.model_validate(schema).example_record()
    request = urllib.request.Request(
        f"http://127.0.0.1:{ws.api_port}/v1/predict",
        data=json.dumps(example).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200
        answer = json.load(resp)
    assert answer["decision"], answer
    ws.answered.append(answer["request_id"])


def _run_service(command: Command, ws: Workspace) -> None:
    line = ws.fill(command.run)
    log_path = ws.tmp / f"{re.sub(r'[^a-z0-9]+', '-', command.key)}.log"
    with log_path.open("w") as out:
        process = subprocess.Popen(
            line, shell=True, cwd=PROJECT_ROOT, env=ws.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            for url in command.probe:
                wait_for_http(ws.fill(url), timeout=SERVICE_START_TIMEOUT, is_alive=lambda: process.poll() is None)
            if command.score:
                _score_one(ws)
        except BaseException as exc:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            raise AssertionError(f"`{line}` did not serve: {exc}\n{log_path.read_text()[-6000:]}") from exc
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            raise AssertionError(
                f"`{line}` did not stop within 60 s of SIGTERM\n{log_path.read_text()[-4000:]}"
            ) from None
    # the port must be free again before the next service takes it
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(ws.fill(command.probe[0]), timeout=1)
        except OSError:
            return
        time.sleep(0.2)


def _run(command: Command, ws: Workspace) -> None:
    if command.kind == "job":
        _run_job(command, ws)
    else:
        _run_service(command, ws)


def _in(sequence: str) -> list[Command]:
    return [command for command in COMMANDS if command.sequence == sequence]


@pytest.mark.integration
@pytest.mark.parametrize("command", _in("lifecycle"), ids=lambda c: c.key)
def test_lifecycle_command_works(command: Command, workspaces: dict[str, Workspace]) -> None:
    """Train, promote, look back, split traffic, roll back: on the first store."""
    _run(command, workspaces["lifecycle"])


@pytest.mark.integration
@pytest.mark.parametrize("command", _in("files"), ids=lambda c: c.key)
def test_files_command_works(command: Command, workspaces: dict[str, Workspace]) -> None:
    """On a store with a model in production: score files (local and Spark), start the UI and both
    services, show the configuration, lint: on the third store."""
    _run(command, workspaces["files"])


@pytest.mark.integration
@pytest.mark.parametrize("command", _in("operations"), ids=lambda c: c.key)
def test_operations_command_works(command: Command, workspaces: dict[str, Workspace]) -> None:
    """From a fresh machine's first model: serve, monitor, learn from outcomes, replay: on the second store."""
    _run(command, workspaces["operations"])
