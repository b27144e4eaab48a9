"""Every file in config/ loads, and a bad config fails at start naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from credit_risk.config import (
    DEFAULT_CONFIG_DIR,
    ConfigError,
    ModelConfig,
    ServingConfig,
    configuration_models,
    field_description,
    load_project_config,
)
from tests.conftest import write_config_dir

pytestmark = pytest.mark.code


def test_committed_config_files_load() -> None:
    config = load_project_config(DEFAULT_CONFIG_DIR)
    assert config.model.registry.model_name == "credit-risk"
    assert config.model.registry.serving_alias == "production"
    assert config.training.cv.folds == 10 and config.training.cv.repeats == 3
    assert {f.name for f in config.features.protected_fields} == {
        "personal_status_and_sex",
        "age_in_years",
        "foreign_worker",
    }


def test_approve_threshold_is_the_cost_optimal_cut_off() -> None:
    config = load_project_config(DEFAULT_CONFIG_DIR)
    costs = config.training.evaluation
    optimal = costs.cost_false_decline / (costs.cost_false_decline + costs.cost_false_approve)
    assert config.model.decision.approve_below == pytest.approx(optimal, abs=1e-3)


def _break(tmp_path: Path, file: str, edit) -> Path:
    target = write_config_dir(tmp_path / "config")
    data = yaml.safe_load((target / file).read_text())
    edit(data)
    (target / file).write_text(yaml.safe_dump(data))
    return target


@pytest.mark.parametrize(
    ("file", "edit", "message"),
    [
        (
            "model_config.yaml",
            lambda d: d.setdefault("registry", {}).update(aliass="x"),
            r"registry\.aliass: Extra inputs",
        ),
        (
            "model_config.yaml",
            lambda d: d.setdefault("decision", {}).update(approve_below=1.5),
            r"decision\.approve_below",
        ),
        (
            "model_config.yaml",
            lambda d: d.setdefault("decision", {}).update(decline_at_or_above=0.1),
            r"decline_at_or_above must be >= approve_below",
        ),
        (
            "model_config.yaml",
            lambda d: d.update(risk_bands=[{"name": "A", "max_probability": 0.5}]),
            r"last risk band must have max_probability 1\.0",
        ),
        ("model_config.yaml", lambda d: d.setdefault("serving", {}).update(port="eighty"), r"serving\.port"),
        (
            "model_config.yaml",
            lambda d: d.setdefault("monitoring", {}).update(alert_on="sometimes"),
            r"monitoring\.alert_on",
        ),
        ("training.yaml", lambda d: d.setdefault("cv", {}).update(folds=1), r"cv\.folds"),
        (
            "training.yaml",
            lambda d: d.update(candidates={"logistic_regression": [], "xgboost": []}),
            r"at least one candidate",
        ),
        (
            "training.yaml",
            lambda d: d.update(candidates={"xgboost": [{"max_dept": 3}]}),
            r"candidates\.xgboost\.0\.max_dept: Extra inputs",
        ),
        ("features.yaml", lambda d: d["fields"][1].update(min=500), r"numeric field needs min <= max"),
        (
            "features.yaml",
            lambda d: d["fields"][0]["categories"].append(d["fields"][0]["categories"][0]),
            r"category codes must be unique",
        ),
        ("features.yaml", lambda d: d["fields"][0].update(type="text"), r"fields\.0\.type"),
    ],
)
def test_invalid_config_fails_naming_the_file_and_key(tmp_path: Path, file: str, edit, message: str) -> None:
    config_dir = _break(tmp_path, file, edit)
    with pytest.raises(ConfigError, match=message) as info:
        load_project_config(config_dir)
    assert file in str(info.value)


def test_a_missing_feature_schema_is_named(tmp_path: Path) -> None:
    config_dir = write_config_dir(tmp_path / "config")
    (config_dir / "features.yaml").unlink()
    with pytest.raises(ConfigError, match=r"features\.yaml: configuration file not found"):
        load_project_config(config_dir)


@pytest.mark.parametrize("name", ["training.yaml", "model_config.yaml"])
def test_a_missing_training_or_model_file_means_all_defaults(tmp_path: Path, name: str) -> None:
    config_dir = write_config_dir(tmp_path / "config")
    (config_dir / name).unlink()
    config = load_project_config(config_dir)
    section = config.training if name == "training.yaml" else config.model
    assert section == type(section)(), f"{name} missing: every key at its default"


def test_a_file_of_comments_only_means_all_defaults(tmp_path: Path) -> None:
    config_dir = write_config_dir(tmp_path / "config")
    (config_dir / "model_config.yaml").write_text("# nothing differs from the defaults\n")
    assert load_project_config(config_dir).model == ModelConfig()


def test_a_section_states_only_what_differs(tmp_path: Path) -> None:
    config_dir = write_config_dir(tmp_path / "config", model={"serving": {"port": 9123}})
    serving = load_project_config(config_dir).model.serving
    assert serving.port == 9123
    assert serving.model_dump(exclude={"port"}) == ServingConfig().model_dump(exclude={"port"})


def test_a_candidates_section_replaces_the_default_grid_whole(tmp_path: Path) -> None:
    logistic_only = {"candidates": {"logistic_regression": [{"C": 0.3}]}}
    candidates = load_project_config(write_config_dir(tmp_path / "config", training=logistic_only)).training.candidates
    assert [c.C for c in candidates.logistic_regression] == [0.3]
    assert candidates.xgboost == () and candidates.scorecard == (), "a kind the file leaves out has no candidates"


def test_every_configuration_key_has_a_description() -> None:
    missing = [
        f"{model.__name__}.{name}"
        for model in configuration_models()
        for name in model.model_fields
        if not field_description(model, name)
    ]
    assert not missing, f"add Field(description=...) to: {missing}"


def test_yaml_syntax_error_is_reported(tmp_path: Path) -> None:
    config_dir = write_config_dir(tmp_path / "config")
    (config_dir / "model_config.yaml").write_text("registry: [unclosed\n")
    with pytest.raises(ConfigError, match=r"model_config\.yaml: not valid YAML"):
        load_project_config(config_dir)


def test_the_quick_search_keeps_the_first_candidate_of_each_kind_under_a_lighter_cv() -> None:
    training = load_project_config().training
    quick = training.quick()
    assert (quick.cv.folds, quick.cv.repeats) == (5, 1)
    assert quick.candidates.xgboost == training.candidates.xgboost[:1]
    assert quick.candidates.logistic_regression == training.candidates.logistic_regression[:1]
    assert quick.candidates.scorecard == training.candidates.scorecard[:1] and quick.candidates.scorecard
    assert quick.data == training.data and quick.evaluation == training.evaluation
