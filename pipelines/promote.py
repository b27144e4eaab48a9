"""Promote: a champion/challenger gate in front of the serving alias (command line).

``mlflow run . -e promote [-P reason=...] [-P force=true] [-P version=N] [-P dry_run=true]``.
The challenger and the current champion are scored on the same holdout from
verified downloads; the serving alias moves only when every configured gate
holds, or on an explicit override with a reason. A refused promotion exits
non-zero and names each failed gate. ``dry_run=true`` prints the gates' report
(JSON) and moves nothing. When approvals are required (an approver token is configured, or
``promotion.require_approval``), a promotion that passes the gates becomes a pending request that
another person approves. The logic is :mod:`credit_risk.lifecycle`'s.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os

from credit_risk.config import Settings, load_project_config
from credit_risk.lifecycle import PromotionRefused, PromotionReport, approvals, promote
from pipelines.cli import add_config_dir, run_job

__all__ = ["PromotionRefused", "main", "promote"]


def _bool(text: str) -> bool:
    if text.lower() in {"1", "true", "yes"}:
        return True
    if text.lower() in {"0", "false", "no", ""}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_dir(parser)
    parser.add_argument("--reason", default="", help="why; required with --force")
    parser.add_argument("--force", type=_bool, default=False, help="promote even if gates fail (needs a reason)")
    parser.add_argument("--version", default="", help="promote this version instead of the challenger")
    parser.add_argument("--dry-run", type=_bool, default=False, help="evaluate the gates, print them, move nothing")
    args = parser.parse_args(argv)
    settings = Settings()

    def job() -> PromotionReport | approvals.Approval:
        config = load_project_config(args.config_dir or settings.config_dir)
        if not args.dry_run and approvals.approvals_required(config, settings):
            # a second person with the approver role decides (POST /v1/approvals/{id}/approve)
            pending = approvals.request_promotion(
                config,
                settings,
                actor=getpass.getuser(),
                reason=args.reason,
                force=args.force,
                version=args.version or None,
            )
            print(json.dumps(pending.to_json(), indent=2))
            return pending
        report = promote(
            config,
            settings,
            reason=args.reason,
            force=args.force,
            version=args.version or None,
            dry_run=args.dry_run,
            run_id=os.environ.get("MLFLOW_RUN_ID"),  # under `mlflow run`: the job's own run
        )
        if args.dry_run:
            print(json.dumps(report.to_json(), indent=2))
        return report

    return run_job(job)


if __name__ == "__main__":
    raise SystemExit(main())
