"""``python -m pipelines.batch_score``: the batch job's command line (the code is in :mod:`pipelines.batch`)."""

from pipelines.batch import *  # noqa: F403
from pipelines.batch import __all__, main  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
