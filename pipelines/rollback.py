"""Roll back: move the serving alias to the version it held before, or to a named one.

``mlflow run . -e rollback [-P version=N] [-P reason=...]``. Without a version
it walks the alias history back: the version that held the alias before the
current one was promoted to it.
"""

from __future__ import annotations

import argparse
import logging

from mlflow.tracking import MlflowClient

from credit_risk import registry
from credit_risk.config import ProjectConfig, Settings, load_project_config
from pipelines.cli import add_config_dir, run_job

log = logging.getLogger(__name__)


class RollbackRefused(registry.RegistryError):
    """There is nothing to roll back to, or the requested version does not exist."""


def previous_version(history: list[registry.AliasEvent], alias: str, current: str) -> str | None:
    """The version ``alias`` held before the latest promotion to ``current``."""
    for event in reversed(history):
        if event.alias == alias and event.to_version == current and event.action.startswith("promote"):
            return event.from_version
    return None


def rollback(
    config: ProjectConfig, settings: Settings, *, version: str | None = None, reason: str = ""
) -> registry.AliasEvent:
    reg = config.model.registry
    client: MlflowClient = registry.connect(settings, config.root)
    current = registry.version_for_alias(client, reg.model_name, reg.serving_alias)
    if version is None:
        if current is None:
            raise RollbackRefused(f"no version holds {reg.serving_alias!r}: nothing to roll back")
        version = previous_version(
            registry.alias_history(client, reg.model_name), reg.serving_alias, str(current.version)
        )
        if version is None:
            raise RollbackRefused(
                f"version {current.version} has no earlier {reg.serving_alias!r} version to go back to"
            )
    if registry.get_version(client, reg.model_name, version) is None:
        raise RollbackRefused(f"version {version} of {reg.model_name!r} does not exist")
    if current is not None and str(current.version) == str(version):
        raise RollbackRefused(f"version {version} already holds {reg.serving_alias!r}")
    event = registry.move_alias(
        client, reg.model_name, reg.serving_alias, str(version), action="rollback", reason=reason or "rollback"
    )
    log.info("%s rolled back from version %s to %s", reg.serving_alias, event.from_version, event.to_version)
    return event


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_dir(parser)
    parser.add_argument("--version", default="", help="roll back to this version (default: the previous one)")
    parser.add_argument("--reason", default="", help="why, for the alias history")
    args = parser.parse_args(argv)
    settings = Settings()
    return run_job(
        lambda: rollback(
            load_project_config(args.config_dir or settings.config_dir),
            settings,
            version=args.version or None,
            reason=args.reason,
        )
    )


if __name__ == "__main__":
    raise SystemExit(main())
