"""Which arm an applicant is in: a keyed hash of the applicant's id, so the same applicant stays
in the same arm across requests, workers, restarts and instances (no state is shared but the key).

The key is the experiment's id: a new experiment draws new groups, and nobody who does not know
the id can choose an id that lands in an arm. The applicant's "random digit" is the first 8 bytes
of BLAKE2b(applicant id, key=experiment id) read as a number in [0, 1).
"""

from __future__ import annotations

import hashlib

_SCALE = float(2**64)


def digit(experiment_id: str, applicant_key: str) -> float:
    """The applicant's position in [0, 1) for this experiment; uniform over applicants."""
    raw = hashlib.blake2b(applicant_key.encode("utf-8"), key=experiment_id.encode("utf-8")[:64], digest_size=8)
    return int.from_bytes(raw.digest(), "big") / _SCALE


def in_share(experiment_id: str, applicant_key: str, share: float) -> bool:
    """True for ``share`` of the applicants: the challenger's arm (split) or the shadowed ones (shadow)."""
    return digit(experiment_id, applicant_key) < share


def arm(experiment_id: str, applicant_key: str, share: float) -> str:
    return "challenger" if in_share(experiment_id, applicant_key, share) else "champion"
