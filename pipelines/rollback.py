"""Roll back: undo the serving alias's last move, or return it to a version that held it before.

``mlflow run . -e rollback [-P version=N] [-P reason=...]``. Without a version
it undoes the last move (after 1 -> 2 -> 1 it goes to 2); with one, the version
must have held the alias before: anything else is a promotion, through the
gates. The logic is :mod:`credit_risk.lifecycle`'s.
"""

from __future__ import annotations

import argparse

from credit_risk.config import Settings, load_project_config
from credit_risk.lifecycle import RollbackRefused, rollback
from pipelines.cli import add_config_dir, run_job

__all__ = ["RollbackRefused", "main", "rollback"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_dir(parser)
    parser.add_argument("--version", default="", help="roll back to this version (default: undo the last move)")
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
