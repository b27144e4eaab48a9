"""Show the registry's versions, aliases and the append-only alias history.

``python -m pipelines.history`` (or ``make history``). With
``--require-alias NAME`` it prints nothing and exits 1 when no version holds
that alias: ``make up`` uses it to decide whether a first model is needed.
An entry still in the ``intent`` state is a move in progress or one a crash
interrupted; ``--reconcile`` settles those older than 30 s from what the alias
holds (the next move does it too).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from credit_risk import lifecycle, registry
from credit_risk.config import Settings, load_project_config
from pipelines.cli import add_config_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_dir(parser)
    parser.add_argument("--require-alias", default="", help="exit 1 unless a version holds this alias")
    parser.add_argument("--json", action="store_true", help="print the history as JSON lines")
    parser.add_argument("--reconcile", action="store_true", help="settle intents left by an interrupted move")
    args = parser.parse_args(argv)
    settings = Settings()
    config = load_project_config(args.config_dir or settings.config_dir)
    name = config.model.registry.model_name
    client = registry.connect(settings, config.root)
    if args.require_alias:
        return 0 if registry.version_for_alias(client, name, args.require_alias) else 1
    if args.reconcile:
        for event in lifecycle.reconcile(client, name):
            print(f"reconciled #{event.sequence} as {event.state}: {event.note}")
    history = lifecycle.alias_history(client, name)
    if args.json:
        for event in history:
            print(json.dumps(asdict(event)))
        return 0
    aliases = registry.aliases_of(client, name)
    print(f"Registered model {name!r} at {client.tracking_uri}")
    for version in registry.list_versions(client, name):
        held = [alias for alias, v in aliases.items() if v == str(version.version)]
        auc = version.tags.get("metric.roc_auc_cv_mean", "?")
        print(f"  v{version.version:<4} {version.tags.get('model_kind', '?'):<9} CV AUC {auc:<9} {', '.join(held)}")
    print("Alias history (oldest first):")
    for e in history:
        print(
            f"  #{e.sequence} {e.at} {e.alias}: {e.from_version or '-'} -> {e.to_version} "
            f"[{e.action}{'' if e.state == 'completed' else ', ' + e.state.upper()}] by {e.actor}: {e.reason} "
            f"{json.dumps(e.figures) if e.figures else ''}{' (' + e.note + ')' if e.note else ''}"
        )
    if not history:
        print("  (none)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
