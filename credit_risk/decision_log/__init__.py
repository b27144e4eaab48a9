"""The decision (prediction) log's contract, shared by the service that writes it and the jobs that read it.

``record`` (the decision record's one definition: each fixed column's type, its key in the
answer, its description; the answer and the log record of a decision), ``format`` (the Arrow
schema built from it, records to Arrow), ``paths`` (directory, partitions,
file names, the monitoring summary), ``privacy`` (dropped and keyed-hashed
fields, ``applicant_id`` included), ``reader`` (rows of a window) and
``retention`` (every copy of a decision cut at ``retention_days``). The writer itself (queue, threads,
MLflow copies) lives in ``serving.prediction_log``.
"""
