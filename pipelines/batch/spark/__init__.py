"""The Spark engine: the project's own code reads, validates, scores and writes the rows in Spark's tasks.

Each executor's Python worker loads the model once, from its copy of the
driver's verified download (shipped with ``SparkContext.addFile``), checks
the copy's digest against the registered one, and runs the local engine's
reader, rule table, encoding and scoring
(:func:`pipelines.batch.reader.parquet_batches`,
:class:`pipelines.batch.validation.ChunkEncoder`,
:func:`pipelines.batch.local.scored_table`): the same rejects, probabilities,
scores, bands, decisions, reason codes and, with ``recourse``, what would
change each decision (:mod:`credit_risk.recourse`), each row with its number in the
input (as the local engine counts them) and its id. A Parquet input is read by
the tasks, row groups planned from the footers (:mod:`pipelines.batch.plan`);
a CSV input is read and numbered by Spark and handed over as Arrow batches
(``mapInArrow``). Each task writes its rows with pyarrow, in the local
engine's schemas and metadata; the driver commits the files of the attempts
Spark counted (:mod:`pipelines.batch.commit`). ``spark_scorer="mlflow"``
keeps MLflow's own route (Spark reads, the rule table in Spark SQL, then
``mlflow.pyfunc.spark_udf``; no reasons, no recourse).

Its parts: :mod:`.session` (a SparkSession), :mod:`.reading` (Spark's own reading of the input,
each row numbered, spread over the cores), :mod:`.project` (the project's scoring on the
executors), :mod:`.mlflow_route` (``spark_udf``) and :mod:`.score` (:func:`score_spark`, choosing
between the two).
"""

from pipelines.batch.spark.score import score_spark
from pipelines.batch.spark.session import LOCAL_JAVA_OPTIONS, spark_session

__all__ = ["LOCAL_JAVA_OPTIONS", "score_spark", "spark_session"]
