"""What a batch run is asked to do, and what it reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from credit_risk.schema import DataValidationError

Engine = Literal["local", "spark"]
SparkScorer = Literal["project", "mlflow"]


@dataclass(frozen=True)
class BatchOptions:
    """What to score, where to write it, with which model and engine."""

    input: Path
    output: Path
    engine: Engine = "local"
    model: str = "production"  # an alias, or a version number
    reasons: bool = True
    recourse: bool = False  # per declined or referred row, what would change the decision (JSON); not spark_udf
    id_column: str = "applicant_id"  # carried through to the output when the input has it
    chunk_rows: int = 65_536
    spark_master: str = "local[*]"
    spark_conf: dict[str, str] = field(default_factory=dict)
    # project: the local engine's reading, scoring and writing in Spark's tasks;
    # mlflow: mlflow.pyfunc.spark_udf (no reasons)
    spark_scorer: SparkScorer = "project"
    # spark_scorer="mlflow" imports the version's own pyfunc_model.py on the executors: code from the
    # model's folder, which nothing else runs; refused unless this is set (allow_model_code=true)
    allow_model_code: bool = False
    progress: bool = True


@dataclass(frozen=True)
class BatchSummary:
    engine: str
    model_name: str
    model_version: str
    rows_read: int
    rows_scored: int
    rows_rejected: int
    seconds: float  # the whole job: read, validate, score, write
    output: Path
    rejects: Path
    reasons: bool = True

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0


def rejects_path(output: Path) -> Path:
    """Bad rows are written next to the output: ``scores.parquet`` -> ``scores.rejects.parquet``."""
    output = Path(output)
    stem = output.name[: -len(output.suffix)] if output.suffix else output.name
    return output.with_name(f"{stem}.rejects.parquet")


def refuse_model_code(options: BatchOptions) -> None:
    """``--spark-scorer mlflow`` runs Python from the version's folder (MLflow's pyfunc loader imports its
    ``pyfunc_model.py``); the digest vouches for the bytes, not for what they do. Only when asked for."""
    if options.engine == "spark" and options.spark_scorer == "mlflow" and not options.allow_model_code:
        raise DataValidationError(
            "spark_scorer=mlflow imports the model version's own pyfunc_model.py on the executors (code from "
            "the registry, which the project's scorer never runs); pass allow_model_code=true "
            "(--allow-model-code true, -P allow_model_code=true) to allow it, or use spark_scorer=project"
        )


def refuse_output_over_input(options: BatchOptions, files: list[Path]) -> None:
    """The output and its rejects file replace what is at their paths: neither may be an input file or a
    folder holding one (the input would be overwritten, or deleted with an older Spark output)."""
    for target in (Path(options.output), rejects_path(options.output)):
        where = target.resolve()
        for path in files:
            path = path.resolve()
            if path == where or where in path.parents:
                raise DataValidationError(f"{target}: the output would replace the input file {path}")
