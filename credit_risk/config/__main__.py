"""``python -m credit_risk.config --show [--config-dir DIR]``: the effective configuration."""

from credit_risk.config.project import main

raise SystemExit(main())
