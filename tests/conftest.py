"""Shared fixtures: a real MLflow store (SQLite in a temp dir) and a real trained model.

The session model is trained once on the committed data with a small, fast
search (same code path as ``make train``), registered and promoted, so the
API, log, UI and batch tests all run against a real registered version.
"""

from __future__ import annotations

import os

# before XGBoost's OpenMP runtime loads (in this process and every child it starts): threads that spin
# while they wait starve the other worker's tests (one fit took 25 s instead of 1 s on a busy machine)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import fcntl
import json
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from credit_risk import registry
from credit_risk.config import DEFAULT_CONFIG_DIR, PROJECT_ROOT, ProjectConfig, Settings, load_project_config

FAST_TRAINING = {
    "cv": {"folds": 3, "repeats": 1},
    # a scorecard's CV (and optbinning's import) costs seconds a training; the session model keeps it
    "scorecard_benchmark": False,
    "candidates": {
        "logistic_regression": [{"C": 0.3}],
        "xgboost": [
            {
                "max_depth": 2,
                "learning_rate": 0.1,
                "n_estimators": 80,
                "subsample": 0.9,
                "colsample_bytree": 0.9,
                "min_child_weight": 1,
            }
        ],
    },
}


def write_config_dir(target: Path, *, training: dict | None = None, model: dict | None = None) -> Path:
    """Copy ``config/`` to ``target`` with top-level keys of training.yaml / model_config.yaml replaced.

    The files state only what differs from the defaults, so an override names a whole top-level
    section as it should be (keys it leaves out are at their defaults)."""
    shutil.copytree(DEFAULT_CONFIG_DIR, target, dirs_exist_ok=True)
    for name, overrides in (("training.yaml", training), ("model_config.yaml", model)):
        if overrides:
            path = target / name
            data = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
            data.update(overrides)
            path.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


@dataclass
class Store:
    """A real MLflow tracking store and registry in a temp dir."""

    uri: str
    settings: Settings
    config: ProjectConfig
    client: MlflowClient


def make_store(tmp: Path, *, training: dict | None = None, model: dict | None = None) -> Store:
    write_config_dir(tmp / "config", training={**FAST_TRAINING, **(training or {})}, model=model)
    return make_store_at(tmp)


def make_store_at(tmp: Path) -> Store:
    """The store whose config folder and database are already in ``tmp``."""
    config_dir = tmp / "config"
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    settings = Settings(MLFLOW_TRACKING_URI=uri, CREDIT_RISK_CONFIG_DIR=config_dir)
    config = load_project_config(config_dir, root=PROJECT_ROOT)
    return Store(uri=uri, settings=settings, config=config, client=registry.connect(settings, PROJECT_ROOT))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A fresh, empty store for tests that change the registry."""
    return make_store(tmp_path)


SHARED_DIR_VARIABLE = "CREDIT_RISK_TEST_SHARED_DIR"  # set by make test for both of its pytest runs


@dataclass
class TrainedModel:
    store: Store
    version: ModelVersion


def _train_and_promote(store: Store) -> ModelVersion:
    from pipelines.promote import promote
    from pipelines.train import train

    version = train(store.config, store.settings)
    promote(store.config, store.settings, reason="test session model")
    return version


def _copy_store(source: Path, target: Path) -> None:
    """A private copy of a built store: its folder copied, every path to it in the database rewritten."""
    shutil.copytree(source, target, dirs_exist_ok=True)
    database = sqlite3.connect(target / "mlflow.db")
    try:
        tables = [row[0] for row in database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            info = database.execute(f'PRAGMA table_info("{table}")').fetchall()
            columns = [name for _, name, kind, *_ in info if "CHAR" in kind.upper() or "TEXT" in kind.upper()]
            for column in columns:
                database.execute(
                    f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) WHERE instr("{column}", ?) > 0',
                    (str(source), str(target), str(source)),
                )
        database.commit()
    finally:
        database.close()


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], dict]) -> tuple[Path, dict]:
    """A store built once by ``build(folder)`` (which returns what the users need to know of it, as
    JSON), and a private copy of it for this session: ``(the copy's folder, what build returned)``.

    Under pytest-xdist each worker is a session of its own: the first to get here builds the
    store once into a folder the workers share (under a file lock); every worker then works
    on a private copy, so no test sees another worker's changes. ``make test`` names that
    folder's parent in ``CREDIT_RISK_TEST_SHARED_DIR``, so its second pytest run (the tests
    that run alone) copies what its first run built instead of building it again.
    """
    own = tmp_path_factory.mktemp(name)
    across_runs = os.environ.get(SHARED_DIR_VARIABLE)
    if not os.environ.get("PYTEST_XDIST_WORKER") and not across_runs:
        return own, build(own)
    shared = Path(across_runs or tmp_path_factory.getbasetemp().parent) / f"shared-{name}"
    shared.mkdir(exist_ok=True)
    with (shared.parent / f"shared-{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / "built.json"
        if not done.exists():
            done.write_text(json.dumps(build(shared)))
    _copy_store(shared, own)
    return own, json.loads(done.read_text())


def _session_model(tmp_path_factory: pytest.TempPathFactory, name: str, training: dict | None = None) -> TrainedModel:
    """A model trained, registered and promoted once (:func:`built_once`), in a store of its own."""
    own, built = built_once(tmp_path_factory, name, _trains_and_promotes(training))
    session_store = make_store_at(own)
    version = session_store.client.get_model_version(session_store.config.model.registry.model_name, built["version"])
    return TrainedModel(store=session_store, version=version)


def _trains_and_promotes(training: dict | None) -> Callable[[Path], dict]:
    def build(folder: Path) -> dict:
        return {"version": str(_train_and_promote(make_store(folder, training=training)).version)}

    return build


SESSION_TRAINING = {"scorecard_benchmark": True}  # the session model's report carries the scorecard benchmark


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """One model trained, registered and promoted to production, shared by the session (its validation
    report carries the scorecard benchmark, as every version's does by default)."""
    return _session_model(tmp_path_factory, "session-store", SESSION_TRAINING)


def session_store_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another private copy of the session's store (a model in production): its folder (config/, mlflow.db)."""
    own, _ = built_once(tmp_path_factory, "session-store", _trains_and_promotes(SESSION_TRAINING))
    return own


def two_versions_store(
    tmp_path_factory: pytest.TempPathFactory, *, model: dict | None = None
) -> tuple[Store, str, str]:
    """A store with version 1 trained and promoted to production and version 2 trained beside it, built
    once for the run (:func:`built_once`): ``(this caller's private copy, "1"'s version, "2"'s version)``.
    ``model`` replaces top-level sections of the copy's ``model_config.yaml`` (the serving section's polling,
    say); the training is the same for every caller."""
    from pipelines.train import train

    def build(folder: Path) -> dict:
        store = make_store(folder)
        first = str(_train_and_promote(store).version)
        return {"first": first, "second": str(train(store.config, store.settings).version)}

    own, built = built_once(tmp_path_factory, "two-versions", build)
    return _private_store(own, model), built["first"], built["second"]


def one_version_store(tmp_path_factory: pytest.TempPathFactory, *, model: dict | None = None) -> tuple[Store, str]:
    """A store with one version trained (the challenger) and nothing in production, built once for the
    run (:func:`built_once`): ``(this caller's private copy, the version)``. ``model`` replaces top-level
    sections of the copy's ``model_config.yaml`` (the promotion gates, say)."""
    from pipelines.train import train

    def build(folder: Path) -> dict:
        store = make_store(folder)
        return {"version": str(train(store.config, store.settings).version)}

    own, built = built_once(tmp_path_factory, "one-version", build)
    return _private_store(own, model), built["version"]


def _private_store(own: Path, model: dict | None) -> Store:
    """The store in a private copy ``own``, its ``model_config.yaml`` sections replaced by ``model``'s."""
    if model:
        write_config_dir(own / "config", training=FAST_TRAINING, model=model)
    return make_store_at(own)


def registered_again(store: Store, version: str, *, challenger: bool = False) -> str:
    """``version``'s artifacts registered as a new version (its tags with it, the digest among them):
    another version to move the aliases to, no training. ``challenger``: given the challenger alias, as
    a training would give it."""
    name = store.config.model.registry.model_name
    first = store.client.get_model_version(name, version)
    created = store.client.create_model_version(name, first.source, run_id=first.run_id, tags=first.tags)
    if challenger:
        store.client.set_registered_model_alias(name, store.config.model.registry.challenger_alias, created.version)
    return str(created.version)


SCORECARD_TRAINING = {"candidates": {"scorecard": [{"C": 1.0, "max_bins": 5}]}}


@pytest.fixture(scope="session")
def scorecard_trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """A points scorecard (the only candidate) trained, registered and promoted in a store of its own."""
    return _session_model(tmp_path_factory, "scorecard-store", SCORECARD_TRAINING)


@pytest.fixture(autouse=True)
def _tracking_uri_follows_fixture(request: pytest.FixtureRequest) -> None:
    """MLflow's tracking URI is process-global: point it at the store the test uses."""
    for name in ("store", "trained", "scorecard_trained"):
        if name in request.fixturenames:
            value = request.getfixturevalue(name)
            chosen = value if isinstance(value, Store) else value.store
            registry.connect(chosen.settings, PROJECT_ROOT)
            return


# ------------------------------------------------------------------ running on both cores (pytest-xdist)
#
# `make test` runs the suite with `-n 4 --dist loadfile`, scheduled by FileGroupScheduling below:
# each group runs whole, in order, on one worker. A file is its own group (its module fixtures are
# built once, its tests keep their order); the files (or test functions) of a group below share one
# group, so they run one after the other and never at the same time as each other: the reliability
# fleet's users and the tests that time answers or run fixed-rate load, each sequence of documented
# commands, the JVM (Spark), the browser. The groups are
# handed out longest first (the order below, then the other files as collected), so no long group
# starts last. (xdist's own `loadgroup` cannot be used: it renames node ids, which pytest 9 no
# longer lets a plugin do.)
SERIAL_GROUPS: dict[str, tuple[str, ...]] = {
    # the fleet's users (tests/reliability/conftest.py trains four versions once per worker) and the
    # tests that time answers or run fixed-rate load: one after the other, the fleet built once
    "reliability": (
        "tests/reliability/test_registry_outage.py",
        "tests/reliability/test_alias_moves_under_load.py",
        "tests/reliability/test_hostile_input.py",
        "tests/reliability/test_load_and_shutdown.py",
        "tests/reliability/test_slow_clients.py",
        "tests/serving/test_prediction_log_sigkill.py",
        "tests/serving/test_workers_metrics.py",
        "tests/serving/test_deadlines.py",
        "tests/serving/test_shutdown.py",
    ),
    # the documented commands: three sequences on three stores, each in order (a test function each)
    "documented-operations": ("tests/documented/test_commands.py::test_operations_command_works",),
    "documented-lifecycle": ("tests/documented/test_commands.py::test_lifecycle_command_works",),
    "documented-files": ("tests/documented/test_commands.py::test_files_command_works",),
    "jvm": ("tests/integration/test_batch_spark.py", "tests/integration/test_second_lender.py"),
    "browser": ("tests/ui/test_browser.py", "tests/ui/test_browser_models.py"),
    "postgres": ("tests/integration/test_team_server.py",),
    # trains the reliability fleet in the parallel part, early, so the tests that run alone find it built;
    # the security checks use the fleet but time nothing: they run after it, on the same worker
    "fleet": ("tests/reliability/test_fleet.py", "tests/reliability/test_security.py"),
}
_GROUP_OF = {path: group for group, paths in SERIAL_GROUPS.items() for path in paths}
# files whose tests time answers or run fixed-rate load: marked ``alone`` (make test runs them after the
# parallel part, by themselves: a second worker's tests beside them starve the service they measure)
ALONE = frozenset(
    (
        *SERIAL_GROUPS["reliability"],
        "tests/serving/test_scale_out.py",
        "tests/reliability/test_idle_connections.py",
    )
)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """``-m alone`` (make test's second part) collects only the files whose tests run alone: importing
    the other test modules only to deselect their tests took 3.4 s of the idle machine's time."""
    if config.getoption("markexpr") != "alone" or collection_path.suffix != ".py":
        return None
    if not collection_path.name.startswith("test_"):
        return None
    return str(collection_path.relative_to(PROJECT_ROOT)) not in ALONE


def group_of(nodeid: str) -> str:
    """The xdist group of a test: its function's serial group, else its file's, else its file."""
    path, _, rest = nodeid.partition("::")
    function = rest.split("[", 1)[0]
    return _GROUP_OF.get(f"{path}::{function}") or _GROUP_OF.get(path, path)


@pytest.hookimpl(tryfirst=True)  # before -m deselects by the marker it adds
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The serial groups are collected first, longest first; files keep their order (a stable sort)."""
    rank = {group: index for index, group in enumerate(SERIAL_GROUPS)}
    items.sort(key=lambda item: rank.get(group_of(item.nodeid), len(rank)))
    for item in items:
        if item.nodeid.split("::", 1)[0] in ALONE:
            item.add_marker(pytest.mark.alone)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``--dist loadfile`` with the serial groups: one work unit per group, in collection order."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    config.option.loadscopereorder = False  # keep the collection order: longest groups first
    return FileGroupScheduling(config, log)
