"""The integration tests' one SparkSession."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.required import require_component, spark_unavailable_reason


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """One SparkSession for the run's Spark tests: its JVM's start and first job cost about 20 s of CPU
    (13 s for the session), so test_batch_spark.py and test_second_lender.py share it. They run on one
    worker, one after the other (the "jvm" group in tests/conftest.py)."""
    require_component(spark_unavailable_reason())
    from pipelines.batch_score import spark_session

    session = spark_session("local[2]", {"spark.sql.shuffle.partitions": "2"})
    yield session
    session.stop()
