"""Privacy of the log: fields never written, fields replaced by a keyed hash.

Applied to a record before it is written anywhere (the write-ahead file, the
Parquet table, the ``_invalid`` salvage), so no copy holds a clear value.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from credit_risk.config import PredictionLogConfig, Settings
from credit_risk.schema import FeatureSchema

APPLICANT_ID = "applicant_id"  # the caller's id for the applicant: a fixed column, hashed or dropped like a field


class PrivacyError(ValueError):
    """The privacy settings cannot be applied; the message names the setting."""


def keyed_hash(key: bytes, value: object) -> str:
    """HMAC-SHA256 of a value's text: stable for joins and counts, unreadable without the key."""
    return hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()


def check_privacy(config: PredictionLogConfig, schema: FeatureSchema, key: bytes | None) -> None:
    """Refuse settings that name fields the schema lacks (``applicant_id`` aside), or hash fields with no key."""
    names = set(schema.by_name) | {APPLICANT_ID}
    for setting in ("drop_fields", "hash_fields"):
        unknown = sorted(set(getattr(config, setting)) - names)
        if unknown:
            raise PrivacyError(
                f"prediction_log.{setting}: not fields of the feature schema (nor {APPLICANT_ID}): {unknown}"
            )
    if config.hash_fields and not key:
        raise PrivacyError(
            "prediction_log.hash_fields is set but no hash key is configured: set CREDIT_RISK_LOG_HASH_KEY"
        )


def private_record(
    record: Mapping[str, Any], *, drop_fields: Sequence[str], hash_fields: Sequence[str], key: bytes | None
) -> dict[str, Any]:
    """A copy of the record with dropped fields removed and hashed fields replaced by their HMAC."""
    if not drop_fields and not hash_fields:
        return dict(record)
    out = {name: value for name, value in record.items() if name not in drop_fields}
    for name in hash_fields:
        value = out.get(name)
        if value is not None:
            out[name] = keyed_hash(key or b"", value)
    return out


def hash_key_of(settings: Settings) -> bytes | None:
    """The log's hash key (``CREDIT_RISK_LOG_HASH_KEY``) as bytes, None when not set."""
    return settings.log_hash_key.get_secret_value().encode() if settings.log_hash_key is not None else None


def applicant_id_as_logged(config: PredictionLogConfig, key: bytes | None) -> Callable[[str], str] | None:
    """How a clear applicant id reads in the log: itself, or its keyed hash when ``hash_fields`` lists
    ``applicant_id`` (a lookup or an outcome by applicant id is hashed the same way, so it still matches).
    None when ``drop_fields`` lists it: the log keeps no applicant id to match."""
    if APPLICANT_ID in config.drop_fields:
        return None
    if APPLICANT_ID in config.hash_fields:
        return lambda value: keyed_hash(key or b"", value)
    return str
