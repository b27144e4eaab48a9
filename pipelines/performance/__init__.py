"""Realized performance: matured decisions joined with their outcomes, per version and per vintage.

``mlflow run . -e performance [-P start=YYYY-MM-DD] [-P end=YYYY-MM-DD] [-P maturity_days=N]``
(or ``python -m pipelines.performance``). Decisions older than the maturity
window are joined with their current outcome; per model version it reports
coverage by decision, ROC-AUC, Gini, KS, Brier, calibration (per band and
decile, in-the-large and slope), bad and approval rates and vintages, beside
the version's holdout figures at training. It logs an MLflow run with the
plots, writes the summary ``GET /v1/performance`` serves, and exits 2 when an
alert from ``performance:`` in model_config.yaml is raised (1 on an error, 0
otherwise).
"""
