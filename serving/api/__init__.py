"""The service's routes, one module per group; dependencies in ``deps``."""
