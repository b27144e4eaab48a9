"""The effective configuration, key by key, with where each value came from.

``python -m credit_risk.config --show [--config-dir DIR]`` (``make config``): every key of
``model_config.yaml`` and ``training.yaml`` with its value and its source: ``file:line`` when
the file states it, ``default`` when the model's default applies, ``env NAME`` when an
environment variable overrides it. Secrets are shown as set or unset, never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from credit_risk.config import ConfigError, ProjectConfig, Settings, load_project_config

# environment variables that replace a configuration key (credit_risk/decision_log/paths.py, ui/app.py)
ENV_OVERRIDES = {
    "CREDIT_RISK_LOG_DIR": ("model_config.yaml", "prediction_log.directory"),
    "CREDIT_RISK_API_URL": ("model_config.yaml", "ui.api_url"),
}
SECRETS = (
    "CREDIT_RISK_ADMIN_TOKEN",
    "CREDIT_RISK_AUDITOR_TOKEN",
    "CREDIT_RISK_LOG_HASH_KEY",
    "CREDIT_RISK_MODEL_SIGNING_KEY",
)


@dataclass(frozen=True)
class Entry:
    """One key of the effective configuration."""

    file: str
    key: str
    value: Any
    source: str


def key_lines(path: Path) -> dict[str, int]:
    """Each dotted key a YAML file states, with its line (1-based); a list is one key."""
    if not path.is_file():
        return {}
    root = yaml.compose(path.read_text())
    found: dict[str, int] = {}

    def walk(node: yaml.Node, prefix: str) -> None:
        if not isinstance(node, yaml.MappingNode):
            return
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            found[key] = key_node.start_mark.line + 1
            walk(value_node, f"{key}.")

    if root is not None:
        walk(root, "")
    return found


def _leaves(model: BaseModel, prefix: str = "") -> list[tuple[str, Any]]:
    leaves: list[tuple[str, Any]] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            leaves += _leaves(value, f"{prefix}{name}.")
        else:
            leaves.append((f"{prefix}{name}", value))
    return leaves


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def effective(config: ProjectConfig, environ: dict[str, str]) -> list[Entry]:
    """Every key of the two files with its effective value and source."""
    entries: list[Entry] = []
    for file, model in (("model_config.yaml", config.model), ("training.yaml", config.training)):
        lines = key_lines(config.config_dir / file)
        for key, value in _leaves(model):
            source = f"{config.config_dir / file}:{lines[key]}" if key in lines else "default"
            entries.append(Entry(file, key, _plain(value), source))
    for variable, (file, key) in ENV_OVERRIDES.items():
        if environ.get(variable):
            entries = [
                Entry(e.file, e.key, environ[variable], f"env {variable}") if (e.file, e.key) == (file, key) else e
                for e in entries
            ]
    return entries


def render(config: ProjectConfig, settings: Settings, environ: dict[str, str]) -> str:
    """The text ``--show`` prints."""
    out = [f"# configuration folder: {config.config_dir}"]
    features = config.features
    out.append(
        f"# features.yaml: the feature schema, version {features.version}, {len(features.fields)} fields "
        f"({config.config_dir / 'features.yaml'})"
    )
    current = ""
    for entry in effective(config, environ):
        if entry.file != current:
            current = entry.file
            out += ["", f"[{current}]"]
        out.append(f"{entry.key} = {json.dumps(entry.value)}  # {entry.source}")
    out += ["", "[environment]"]
    uri = settings.mlflow_tracking_uri
    out.append(
        f"MLFLOW_TRACKING_URI = {json.dumps(uri)}  # env" if uri else "MLFLOW_TRACKING_URI = unset  # embedded store"
    )
    config_source = "env" if environ.get("CREDIT_RISK_CONFIG_DIR") else "default"
    out.append(f"CREDIT_RISK_CONFIG_DIR = {json.dumps(str(settings.config_dir))}  # {config_source}")
    for variable in ENV_OVERRIDES:
        shown = json.dumps(environ[variable]) if environ.get(variable) else "unset"
        out.append(f"{variable} = {shown}  # overrides {ENV_OVERRIDES[variable][1]}")
    for variable in SECRETS:
        out.append(f"{variable} = {'set' if environ.get(variable) else 'unset'}  # secret, never printed")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m credit_risk.config",
        description="Print the effective configuration and where each value came from.",
    )
    parser.add_argument("--show", action="store_true", required=True, help="print the effective configuration")
    parser.add_argument("--config-dir", type=Path, default=None, help="default: CREDIT_RISK_CONFIG_DIR, else config/")
    args = parser.parse_args(argv)
    settings = Settings()
    try:
        config = load_project_config(args.config_dir or settings.config_dir)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(render(config, settings, dict(os.environ)))
    return 0
