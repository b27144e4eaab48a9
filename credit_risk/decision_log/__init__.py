"""The decision (prediction) log's contract, shared by the service that writes it and the jobs that read it.

``format`` (columns, types, records to Arrow), ``paths`` (directory, partitions,
file names, the monitoring summary), ``privacy`` (dropped and keyed-hashed
fields, ``applicant_id`` included), ``reader`` (rows of a window) and
``retention`` (every copy of a decision cut at ``retention_days``). The writer itself (queue, threads,
MLflow copies) lives in ``serving.prediction_log``.
"""
