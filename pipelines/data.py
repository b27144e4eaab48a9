"""The applicant data and the holdout split live in the core (:mod:`credit_risk.data`): training
and promotion (in a job or in the scoring service's admin route) must cut the same holdout."""

from credit_risk.data import Split, file_digest, load_applicants, load_split, split_holdout

__all__ = ["Split", "file_digest", "load_applicants", "load_split", "split_holdout"]
