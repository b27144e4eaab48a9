"""Lifecycle jobs, one module per step, each run with ``mlflow run . -e <step>``."""
