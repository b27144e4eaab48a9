"""Loan outcomes come back: row checks, the outcomes table, decisions joined with their outcomes.

``checks`` refuses bad rows with a rule, ``table`` stores the rest (atomic,
idempotent, corrections supersede with history kept), ``decisions`` reads what
the prediction log recorded, ``join`` pairs matured decisions with outcomes.
Both the service (``POST /v1/outcomes``) and the jobs (``pipelines/outcomes.py``,
``pipelines/performance/``, training from production) use these.
"""
