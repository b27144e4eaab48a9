"""The whole project's configuration: one folder's files read and validated into a :class:`ProjectConfig`.

Also the configuration models listed for the reference page, and ``--show``'s entry point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from credit_risk.config.base import DEFAULT_CONFIG_DIR, PROJECT_ROOT, ConfigError, _Frozen
from credit_risk.config.model import ModelConfig
from credit_risk.config.training import TrainingConfig
from credit_risk.schema import FeatureSchema


class ProjectConfig(_Frozen):
    """Everything in ``config/``: the model's contract, training, serving."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    root: Path
    config_dir: Path
    features: FeatureSchema
    training: TrainingConfig
    model: ModelConfig

    @model_validator(mode="after")
    def _recourse_costs_name_fields(self) -> ProjectConfig:
        unknown = sorted(set(self.model.recourse.costs) - set(self.features.by_name))
        if unknown:
            raise ValueError(f"recourse.costs names fields the feature schema does not have: {', '.join(unknown)}")
        return self

    def resolve(self, path: Path) -> Path:
        """A path from a config file, relative to the project root."""
        return path if path.is_absolute() else self.root / path


def _read_yaml(path: Path, *, optional: bool = False) -> dict[str, Any]:
    if not path.is_file():
        if optional:
            return {}
        raise ConfigError(f"{path}: configuration file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:  # only comments: every key at its default
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def _validation_message(path: Path, exc: ValidationError) -> str:
    problems = [f"{'.'.join(str(part) for part in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()]
    return f"{path}: invalid configuration: " + "; ".join(problems)


def parse_config_file(path: Path, model: type[BaseModel], *, optional: bool = False) -> Any:
    """Read one YAML file into its config model, with errors that name the key.

    The file states only what differs from the model's defaults; an ``optional`` file that is
    missing means every key at its default.
    """
    try:
        return model.model_validate(_read_yaml(path, optional=optional))
    except ValidationError as exc:
        raise ConfigError(_validation_message(path, exc)) from exc
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{path}: invalid configuration: {exc}") from exc


def load_project_config(config_dir: Path | None = None, *, root: Path | None = None) -> ProjectConfig:
    """Load ``features.yaml``, ``training.yaml`` and ``model_config.yaml`` from one folder.

    ``features.yaml`` (the lender's feature schema) is required; a missing ``training.yaml`` or
    ``model_config.yaml`` means all defaults.
    """
    config_dir = Path(config_dir or DEFAULT_CONFIG_DIR)
    parts = {
        "features": parse_config_file(config_dir / "features.yaml", FeatureSchema),
        "training": parse_config_file(config_dir / "training.yaml", TrainingConfig, optional=True),
        "model": parse_config_file(config_dir / "model_config.yaml", ModelConfig, optional=True),
    }
    try:
        return ProjectConfig(root=Path(root or PROJECT_ROOT), config_dir=config_dir, **parts)
    except ValidationError as exc:
        raise ConfigError(_validation_message(config_dir / "model_config.yaml", exc)) from exc


def configuration_models() -> list[type[BaseModel]]:
    """Every model of ``model_config.yaml`` and ``training.yaml``, outermost first (for the reference)."""
    found: list[type[BaseModel]] = []

    def visit(model: type[BaseModel]) -> None:
        if model in found:
            return
        found.append(model)
        for field in model.model_fields.values():
            for candidate in _model_types(field.annotation):
                visit(candidate)

    visit(ModelConfig)
    visit(TrainingConfig)
    return found


def _model_types(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in getattr(annotation, "__args__", ()) for model in _model_types(arg)]


def field_description(model: type[BaseModel], name: str) -> str:
    """A key's description: its own, or for a section the section model's docstring."""
    field = model.model_fields[name]
    if field.description:
        return field.description
    section = field.annotation
    if isinstance(section, type) and issubclass(section, BaseModel) and section.__doc__:
        return " ".join(section.__doc__.split())
    return ""


def main(argv: list[str] | None = None) -> int:
    """``python -m credit_risk.config --show [--config-dir DIR]``: the effective configuration."""
    from credit_risk.config_show import main as show

    return show(argv)
