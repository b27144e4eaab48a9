"""A model folder's digest and signature, and where its scoring model sits: what every copy is checked with.

Kept apart from :mod:`credit_risk.registry` (which re-exports all of it) so
that a process that only checks and loads a model copy, a Spark executor's
Python worker, does not import MLflow.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

SCORING_ARTIFACT = "scoring_model"


class RegistryError(RuntimeError):
    """A registry operation cannot be done; the message says why."""


class UnverifiedArtifactError(RegistryError):
    """A version whose artifacts cannot be trusted: no digest tag, a digest or signature mismatch."""


def scoring_dir(model_dir: Path) -> Path:
    """Where the plain-data scoring model sits inside a downloaded pyfunc model folder."""
    return Path(model_dir) / "artifacts" / SCORING_ARTIFACT


# MLflow writes this bookkeeping file (model name and version) at the root of a version's folder
# when the version is registered or downloaded; it is not part of the model and is not hashed.
# Only the root one: a file of that name anywhere below is a model file like any other.
_ROOT_UNHASHED = "registered_model_meta"
_DIGEST_DOMAIN = b"credit-risk artifact digest v2"
_SIGNATURE_DOMAIN = b"credit-risk artifact signature v1"
# a version's validation report has its own domain: a model's signature never passes for a report's
_REPORT_DIGEST_DOMAIN = b"credit-risk validation report digest v1"
_REPORT_SIGNATURE_DOMAIN = b"credit-risk validation report signature v1"


def _framed(data: bytes) -> bytes:
    """``data`` preceded by its length (8 bytes, big-endian): a sequence of these parses one way only."""
    return len(data).to_bytes(8, "big") + data


def directory_digest(directory: Path, *, domain: bytes = _DIGEST_DOMAIN) -> str:
    """SHA-256 over every model file, each entry its length-prefixed relative path and bytes, in path order.

    The length prefixes make the encoding injective: two different sets of
    files (paths and contents) never feed the hash the same bytes.
    """
    root = Path(directory)
    digest = hashlib.sha256(_framed(domain))
    entries = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file())
    for relative, path in entries:
        if relative == _ROOT_UNHASHED:
            continue
        digest.update(_framed(relative.encode("utf-8", "surrogateescape")))
        size = path.stat().st_size
        digest.update(size.to_bytes(8, "big"))
        read = 0
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
                read += len(chunk)
        if read != size:
            raise UnverifiedArtifactError(f"{relative}: changed while it was being hashed")
    return digest.hexdigest()


def sign_digest(key: str, *, name: str, version: str | int, digest: str, domain: bytes = _SIGNATURE_DOMAIN) -> str:
    """HMAC-SHA256 of a version's digest, bound to the model's name and version number."""
    parts = (domain, name.encode(), str(version).encode(), digest.encode())
    message = b"".join(_framed(part) for part in parts)
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def report_digest(directory: Path) -> str:
    """The digest of a validation report's folder (its HTML page and its data), as :func:`directory_digest`."""
    return directory_digest(directory, domain=_REPORT_DIGEST_DOMAIN)


def sign_report_digest(key: str, *, name: str, version: str | int, digest: str) -> str:
    """HMAC-SHA256 of a version's report digest, bound to the name and version (apart from the model's)."""
    return sign_digest(key, name=name, version=version, digest=digest, domain=_REPORT_SIGNATURE_DOMAIN)
