"""The served model and how it is swapped: resolve, download, verify, load, warm, switch.

A :class:`Served` object is immutable and holds everything one request needs
(model, decision engine, request parser, version info). The holder swaps it
with one reference assignment, so a request that picked up a ``Served`` at its
start finishes on it even if a reload happens meanwhile, and every response
names the version that scored it. Reloads are serialised by a lock; a version
that fails any step is not served, the old one keeps serving, and the attempt
is reported. The model only ever comes from the registry (the configured
alias or pinned version), never from a path or URI in a request.
"""

from __future__ import annotations

import gc
import logging
import math
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from credit_risk import registry
from credit_risk.config import ProjectConfig
from credit_risk.decision import DecisionEngine
from credit_risk.recourse import RecourseSearch
from credit_risk.scoring import ScoringModel
from credit_risk.trees import service_runtime
from serving.requests import RequestParser

log = logging.getLogger(__name__)


class ModelRefusedError(RuntimeError):
    """A version that must not be served (hash mismatch, missing hash tag); the message says why."""


@dataclass(frozen=True)
class Served:
    """One loaded, verified and warmed model version. Never mutated after the swap."""

    name: str
    alias: str | None
    version: str
    run_id: str
    created_at: str
    tags: dict[str, str]
    metrics: dict[str, float]
    digest: str
    loaded_at: str
    model: ScoringModel
    engine: DecisionEngine
    parser: RequestParser
    model_ref: dict[str, Any]  # {"name", "version", "alias"}: the part of every response naming the scorer
    # what computes single requests: "numpy" (probabilities and reasons), "numpy+xgboost", "xgboost", "linear",
    # "scorecard"
    runtime: str
    signed: bool = False  # its digest's signature was checked under CREDIT_RISK_MODEL_SIGNING_KEY at load
    recourse: RecourseSearch | None = None  # what would change the decision, on this version (built at load)

    @property
    def light_single(self) -> bool:
        """A single applicant is scored in microseconds of numpy (no XGBoost call), reasons included."""
        return self.runtime == "numpy"


@dataclass(frozen=True)
class Attempt:
    """The outcome of one resolve (and maybe load): for ``/v1/model`` and ``/metrics``.

    ``outcome``: ``loaded`` (a new version is now served), ``unchanged`` (the
    resolved version is already served, or was refused before), ``refused``
    (hash mismatch or missing hash), ``failed`` (download or load error),
    ``registry_error`` (the registry could not be asked).
    """

    at: str
    trigger: str
    outcome: str
    version: str | None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _iso_from_ms(ms: int | None) -> str:
    return datetime.fromtimestamp((ms or 0) / 1000, UTC).isoformat(timespec="seconds")


def _metrics_from_tags(tags: dict[str, str]) -> dict[str, float]:
    out = {}
    for key, value in tags.items():
        if key.startswith("metric."):
            try:
                number = float(value)
            except ValueError:
                continue
            if math.isfinite(number):
                out[key.removeprefix("metric.")] = number

    return out


@dataclass
class ModelHolder:
    """Holds the served model; ``refresh`` resolves the registry and swaps when the version moved."""

    config: ProjectConfig
    client_factory: Callable[[], MlflowClient]
    warmup_rounds: int = 20
    signing_key: str | None = None  # CREDIT_RISK_MODEL_SIGNING_KEY: every load checks the digest's signature
    on_swap: Callable[[Served], None] | None = None
    on_attempt: Callable[[Attempt], None] | None = None
    served: Served | None = None
    last_reload: Attempt | None = None  # the last attempt that loaded, refused or failed a version
    last_poll: Attempt | None = None  # the last resolve, whatever its outcome
    draining: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _client: MlflowClient | None = None
    _refused: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # version -> tags when refused

    def client(self) -> MlflowClient:
        """The registry client the polls share (built again after a failed registry check)."""
        client = self._client
        if client is None:
            client = self._client = self.client_factory()
        return client

    # ------------------------------------------------------------ readiness

    def not_ready_reason(self) -> str | None:
        """None when ready to score, else why not."""
        if self.draining:
            return "draining: the service is shutting down"
        if self.served is not None:
            return None
        last = self.last_poll
        if last is None:
            return "starting: the model is being resolved and loaded"
        if last.outcome == "registry_error":
            return f"no model loaded: registry check failed: {last.error}"
        if self.last_reload is not None and self.last_reload.error:
            failed = self.last_reload
            return f"no model loaded: version {failed.version} {failed.outcome}: {failed.error}"
        return f"no model loaded: {last.error or last.outcome}"

    def refused_text(self) -> str | None:
        """While a version is served: why the last version the registry named instead was refused, if it was."""
        last = self.last_reload
        if self.served is None or last is None or last.outcome != "refused" or last.version == self.served.version:
            return None
        return f"version {last.version} refused, still serving {self.served.version}: {last.error}"

    # ------------------------------------------------------------ reload

    def refresh(self, *, trigger: str = "poll") -> Attempt:
        """Resolve the served version now; load and swap it in if it differs. Serialised."""
        with self._lock:
            attempt = self._refresh(trigger)
            self.last_poll = attempt
            if attempt.outcome in {"loaded", "refused", "failed"}:
                self.last_reload = attempt
            if self.on_attempt is not None:
                self.on_attempt(attempt)
            return attempt

    def _refresh(self, trigger: str) -> Attempt:
        reg = self.config.model.registry
        try:
            if self._client is None:
                self._client = self.client_factory()
            version = registry.resolve(self._client, reg)
        except Exception as exc:
            log.warning("registry check failed (%s): %s", trigger, exc)
            self._client = None  # build a fresh client next time (a store that failed to open stays failed)
            return Attempt(_now(), trigger, "registry_error", None, _short(exc))
        number = str(version.version)
        if self.served is not None and self.served.version == number:
            return Attempt(_now(), trigger, "unchanged", number)
        tags = version.tags or {}
        digest_tag = (tags.get(registry.ARTIFACT_DIGEST_TAG), tags.get(registry.ARTIFACT_SIGNATURE_TAG))
        if trigger == "poll" and number in self._refused and self._refused[number] == digest_tag:
            # refused before (its artifacts do not match the recorded hash): do not download it again
            # every poll; an admin reload, or a new hash tag, tries again
            previous = self.last_reload
            error = previous.error if previous and previous.version == number else "refused before"
            return Attempt(_now(), trigger, "unchanged", number, error)
        started = time.perf_counter()
        try:
            served = self._load(self._client, version)
        except ModelRefusedError as exc:
            self._refused[number] = digest_tag
            log.error("version %s refused: %s; still serving %s", number, exc, self._serving_text())
            return Attempt(_now(), trigger, "refused", number, _short(exc))
        except Exception as exc:
            # not remembered: a download cut short by a network blip is retried at the next poll
            log.exception("version %s failed to load; still serving %s", number, self._serving_text())
            return Attempt(_now(), trigger, "failed", number, _short(exc))
        previous = self.served.version if self.served else None
        self.served = served  # the atomic switch: one reference assignment
        self._refused.pop(number, None)
        # Objects alive now (the model, the request models) never need collecting: freeze them so
        # the collector's full passes stop walking them (GC pauses were what set the p99).
        gc.unfreeze()  # let the previous version's cycles (its generated request classes) be collected
        gc.collect()
        gc.freeze()
        if self.on_swap is not None:
            self.on_swap(served)
        log.info(
            "serving %s version %s (was %s), loaded in %.2fs",
            served.name,
            number,
            previous,
            time.perf_counter() - started,
        )
        return Attempt(_now(), trigger, "loaded", number)

    def load_version(self, number: str) -> Served:
        """Another version (an experiment's challenger), fetched, digest-checked, loaded and warmed as
        the served one is; not switched in. Raises :class:`ModelRefusedError` or the load's error."""
        client = self.client()
        version = registry.get_version(client, self.config.model.registry.model_name, number)
        if version is None:
            raise ModelRefusedError(f"version {number} does not exist")
        served = self._load(client, version)
        return replace(served, alias=None, model_ref={**served.model_ref, "alias": None})

    def _serving_text(self) -> str:
        return f"version {self.served.version}" if self.served else "nothing"

    def _load(self, client: MlflowClient, version: ModelVersion) -> Served:
        reg = self.config.model.registry
        number = str(version.version)
        with tempfile.TemporaryDirectory(prefix="credit-risk-serving-") as tmp:
            try:
                local = registry.fetch_verified(
                    client,
                    version,
                    Path(tmp),
                    signing_key=self.signing_key,
                    require_signed=self.config.model.security.require_signed_models,
                )
            except registry.UnverifiedArtifactError as exc:
                raise ModelRefusedError(str(exc)) from None
            model = ScoringModel.load(registry.scoring_dir(local), threads=1)
        expected = version.tags[registry.ARTIFACT_DIGEST_TAG]
        scorer, runtime = service_runtime(model, self.config.model.serving.tree_runtime)
        engine = DecisionEngine(scorer, self.config.model)  # type: ignore[arg-type]
        parser = RequestParser.for_schema(model.schema, max_batch=self.config.model.serving.max_batch_size)
        alias = None if reg.pinned_version is not None else reg.serving_alias
        served = Served(
            name=reg.model_name,
            alias=alias,
            version=number,
            run_id=version.run_id or "",
            created_at=_iso_from_ms(version.creation_timestamp),
            tags=dict(version.tags),
            metrics=_metrics_from_tags(version.tags),
            digest=expected,
            loaded_at=_now(),
            model=model,
            engine=engine,
            parser=parser,
            model_ref={"name": reg.model_name, "version": number, "alias": alias},
            runtime=runtime,
            signed=bool(self.signing_key),  # fetch_verified refused it otherwise
            recourse=RecourseSearch(engine, self.config.model.recourse),
        )
        _warm(served, self.warmup_rounds)
        return served


def _warm(served: Served, rounds: int) -> None:
    """Validate and score the schema's example through the real path, so the first request is not slow."""
    example = orjson.dumps(served.model.schema.example_record())
    for _ in range(max(rounds, 1)):
        record = served.parser.single(example)
        assessment = served.engine.assess([record])[0]
    if not 0.0 <= assessment.probability <= 1.0:
        raise ModelRefusedError(
            f"version {served.version}: warm-up probability {assessment.probability} is not in [0, 1]"
        )


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ModelRefusedError) else str(exc)
    return text if len(text) <= 500 else text[:500] + "..."
