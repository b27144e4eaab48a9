"""Privacy of the log: fields never written, fields replaced by a keyed hash.

Applied to a record before it is written anywhere (the write-ahead file, the
Parquet table, the ``_invalid`` salvage), so no copy holds a clear value.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

from credit_risk.config import PredictionLogConfig
from credit_risk.schema import FeatureSchema


class PrivacyError(ValueError):
    """The privacy settings cannot be applied; the message names the setting."""


def keyed_hash(key: bytes, value: object) -> str:
    """HMAC-SHA256 of a value's text: stable for joins and counts, unreadable without the key."""
    return hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()


def check_privacy(config: PredictionLogConfig, schema: FeatureSchema, key: bytes | None) -> None:
    """Refuse settings that name fields the schema lacks, or hash fields with no key."""
    names = set(schema.by_name)
    for setting in ("drop_fields", "hash_fields"):
        unknown = sorted(set(getattr(config, setting)) - names)
        if unknown:
            raise PrivacyError(f"prediction_log.{setting}: not fields of the feature schema: {unknown}")
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
