"""What the engines leave at ``--output``, and what they agree to replace there.

Both engines replace their output: the Spark engine moves the older output
folder (and its rejects folder) aside at the commit and deletes it, the local
engine overwrites its file. So each replaces only an earlier output of its
own, recognised by a marker it writes: a Spark output folder holds
``_credit_risk_output.json`` (beside ``_SUCCESS``; readers skip ``_`` files),
a local output file carries ``credit_risk_output`` in its Parquet schema's
metadata. An empty folder may be used too. Anything else at either path is
refused, naming it, before a row is read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq

from credit_risk.schema import DataValidationError
from pipelines.batch.options import rejects_path

MARKER_FILE = "_credit_risk_output.json"
MARKER_KEY = "credit_risk_output"
WRITER = "credit-risk batch_score"


def marked(metadata: Mapping[str, str]) -> dict[str, str]:
    """The scored files' schema metadata with the marker key: what makes a local output file recognisable."""
    return {**metadata, MARKER_KEY: WRITER}


def write_marker(folder: Path, kind: Literal["scored", "rejects"], metadata: Mapping[bytes, bytes] | None) -> None:
    """The marker of a Spark output folder: which job wrote it, with the scored files' metadata."""
    fields = {key.decode(): value.decode() for key, value in (metadata or {}).items()}
    (folder / MARKER_FILE).write_text(json.dumps({**fields, MARKER_KEY: WRITER, "kind": kind}, indent=1) + "\n")


def is_earlier_output(path: Path) -> bool:
    """A folder with the marker file, or a Parquet file whose schema metadata has the marker key."""
    if path.is_dir():
        return (path / MARKER_FILE).is_file()
    if not path.is_file():
        return False
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException):  # not Parquet: certainly not ours
        return False
    return MARKER_KEY.encode() in metadata


def refuse_foreign_output(output: Path, engine: Literal["local", "spark"]) -> None:
    """Refuse to run when the output or its rejects path holds anything but an earlier output of ``engine``'s
    kind (a folder for Spark, a file for the local engine; Spark also replaces a local output file) or an
    empty folder (Spark)."""
    for target in (Path(output), rejects_path(output)):
        if not (target.exists() or target.is_symlink()):
            continue
        if target.is_dir():
            if engine == "local":
                raise DataValidationError(
                    f"{target}: is a folder; the local engine writes one Parquet file there: name a file"
                )
            if is_earlier_output(target) or not any(target.iterdir()):
                continue
            raise DataValidationError(
                f"{target}: a folder that is not empty and not an earlier output of batch_score (it has no "
                f"{MARKER_FILE}); the spark engine replaces its output folder whole, so it will not delete "
                "what is there: choose another output, or move those files yourself"
            )
        if not is_earlier_output(target):
            raise DataValidationError(
                f"{target}: a file that is not an earlier output of batch_score (no {MARKER_KEY} in its Parquet "
                f"metadata); the {engine} engine would replace it: choose another output, or move it yourself"
            )
