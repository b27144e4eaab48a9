"""Monitor: drift and health of the served model, from the prediction log (the job is in ``job``)."""

from pipelines.monitor.drift import EXIT_ALERT, LEVELS, Reference, load_reference, summarise
from pipelines.monitor.job import main, monitor

__all__ = ["EXIT_ALERT", "LEVELS", "Reference", "load_reference", "main", "monitor", "summarise"]
