"""The model lifecycle the jobs and the admin API share: promotion gates, rollback, the alias history.

``pipelines/promote.py``, ``rollback.py`` and ``history.py`` are command-line
wrappers over this package; ``serving/api/admin.py`` calls it directly.
"""

from credit_risk.lifecycle.actions import (
    PromotionRefused,
    PromotionReport,
    RollbackRefused,
    held_before,
    promote,
    rollback,
    undo_target,
)
from credit_risk.lifecycle.gates import Evaluation, GateResult, evaluate_gates, evaluate_version
from credit_risk.lifecycle.history import (
    HISTORY_TAG_PREFIX,
    AliasEvent,
    alias_history,
    completed_moves,
    move_alias,
    reconcile,
)

__all__ = [
    "HISTORY_TAG_PREFIX",
    "AliasEvent",
    "Evaluation",
    "GateResult",
    "PromotionRefused",
    "PromotionReport",
    "RollbackRefused",
    "alias_history",
    "completed_moves",
    "evaluate_gates",
    "evaluate_version",
    "held_before",
    "move_alias",
    "promote",
    "reconcile",
    "rollback",
    "undo_target",
]
