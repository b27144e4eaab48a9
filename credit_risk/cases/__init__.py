"""Human oversight: cases for the decisions a person decides, overrides, contests and the stop switch.

``store`` keeps cases in a real database (SQLAlchemy; schema by the Alembic migrations in
``migrations/``): ``database`` holds the engine, transactions and migrations, ``intake`` opens
cases (as decisions are answered, and from the decision log), ``store`` reads and acts on them.
``models`` declares the tables, ``policy`` holds the rules (what opens a case, what an override
needs, the stop switch's state). Routes, jobs and pages call these.
"""

from credit_risk.cases.database import default_path
from credit_risk.cases.policy import AUTOMATION, CaseRuleError, automation_mode
from credit_risk.cases.store import CaseConflictError, CaseNotFoundError, CaseStore, open_store

__all__ = [
    "AUTOMATION",
    "CaseConflictError",
    "CaseNotFoundError",
    "CaseRuleError",
    "CaseStore",
    "automation_mode",
    "default_path",
    "open_store",
]
