"""What would change the decision: alternative applications the served model would approve (recourse).

For a declined or referred applicant, :meth:`RecourseSearch.search` returns up to
``recourse.max_alternatives`` alternatives, each changing at most
``recourse.max_changes`` fields, ranked by the configured cost. Only fields the
feature schema marks actionable move, and only in their direction and within
their bounds (``FieldSpec.recourse``); immutable, unused and protected fields
never change.

The search follows the model's own structure. A tree ensemble's output in one
column changes only where a split threshold lies, so a numeric field's
candidate values are the values just past each threshold in the allowed
direction (rounded within the same region, so the amount reads 9,400 rather
than 9,437 and scores the same); a categorical field's are the codes further
along its declared order. Single changes are scored as one matrix, then pairs
(each field reduced to its ``values_per_field`` best values: those that lower
the risk more than any smaller change of the same field), then, with
``max_changes: 3``, triples grown from the most promising pairs. A combination
containing a change that already succeeds alone is not minimal and is left
out. For a logistic model the candidates are the training profile's bin edges.

Every alternative returned was scored again, alone, through the engine's
decision path, the one the service answers with: it reaches the decision it
claims, or it is dropped.
"""

from credit_risk.recourse.answers import Alternative, Change, RecourseAnswer
from credit_risk.recourse.search import RecourseSearch

__all__ = ["Alternative", "Change", "RecourseAnswer", "RecourseSearch"]
