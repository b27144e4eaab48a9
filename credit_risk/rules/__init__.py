"""The rule table: every field's rules, derived once from its schema declaration.

Each consumer asks the same :class:`FieldRule` and words a broken rule the
same way: the training data check (pandas), the API's request model (a JSON
value), local batch scoring (an Arrow column), Spark (a column expression)
and the UI's form and CSV pre-check (a text cell). A rule has a stable
``type`` (the API's 422 ``type``, unchanged from earlier versions) and one
message.
"""

from credit_risk.rules.fields import (
    NOT_INTEGER,
    NOT_NUMBER,
    NOT_WHOLE,
    NUMBER_PATTERN,
    REQUIRED,
    ArrowCheck,
    FieldRule,
    Rule,
    RuleError,
    field_rules,
    plain_number,
    rules_from_json,
)
from credit_risk.rules.frames import check_frame, decode_source_frame

__all__ = [
    "NOT_INTEGER",
    "NOT_NUMBER",
    "NOT_WHOLE",
    "NUMBER_PATTERN",
    "REQUIRED",
    "ArrowCheck",
    "FieldRule",
    "Rule",
    "RuleError",
    "check_frame",
    "decode_source_frame",
    "field_rules",
    "plain_number",
    "rules_from_json",
]
