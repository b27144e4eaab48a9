"""Where the outcomes table lives, beside the prediction log."""

from __future__ import annotations

from pathlib import Path

from credit_risk.config import ProjectConfig


def resolve_outcomes_dir(config: ProjectConfig, log_dir: Path) -> Path:
    """The outcomes folder: ``outcomes.directory`` (root-relative) if set, else ``<log dir>/../outcomes``."""
    directory = config.model.outcomes.directory
    if directory is not None:
        return directory if directory.is_absolute() else config.root / directory
    return Path(log_dir).parent / "outcomes"
