"""Loading a classifier from a setting, and swapping it live without stopping the stream.

A swap loads and warms the new model in a thread, beside the old one, while the event loop
keeps serving; then `InferenceRunner.swap` replaces it between jobs. Batches already
tokenizing finish on the old model, later ones use the new: no record is scored twice or
skipped, and each `ScoredEvent` names the model that scored it. A failed load leaves the old
model in place and says why (the caller's HTTP status, a log line, `sm_model_swaps_total`).

Triggers: `POST /admin/model` with `{"model_dir": ...}` (stream_app/web/admin.py parses it; only
when `SM_WEB_TOKEN` is set, the token guard checks the bearer), and SIGHUP, which re-reads
`SM_MODEL_DIR` (environment and `.env`). Swaps are counted through a `SwapObserver`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from stream_app.engine.null import NullClassifier, is_null_model
from stream_app.engine.onnx_classifier import OnnxClassifier, Provider
from stream_app.engine.runner import InferenceRunner
from stream_app.engine.staged import StagedClassifier
from stream_app.engine.tokenize import LongText
from stream_app.engine.types import DOMAINS, ModelInfo

log = logging.getLogger(__name__)

WARMUP_TEXTS = ["warming up", "a short post", "a much longer review of a product " * 8, "😀 ok"]
WARMUP_DOMAINS = [DOMAINS[i % len(DOMAINS)] for i in range(len(WARMUP_TEXTS))]  # every head's path


def model_revision(model_dir: Path) -> str:
    """A digest of what decides the scores: JSON files (labels, calibration, tokenizer) by
    content, model files by name and size. A byte-identical copy has the same revision."""
    sha = hashlib.sha256()
    for path in sorted(model_dir.iterdir()):
        if path.suffix == ".json":
            sha.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        elif path.suffix == ".onnx":
            sha.update(f"{path.name}\0{path.stat().st_size}\0".encode())
    return sha.hexdigest()[:12]


@dataclass(frozen=True)
class LoadOptions:
    """How to run a model (the composition root fills it from SM_PROVIDER, SM_INTRA_OP_THREADS, ...)."""

    provider: Provider = "auto"
    intra_op_threads: int = 0
    max_length: int = 128
    spin: bool = False
    long_text: LongText = "head_tail"


def load_classifier(model_dir: Path, options: LoadOptions) -> StagedClassifier:
    """The classifier in `model_dir`; `null:` is the bench-only null model."""
    if is_null_model(model_dir):
        return NullClassifier()
    if not (model_dir / "labels.json").is_file():
        raise FileNotFoundError(f"{model_dir} is not a model directory (no labels.json)")
    classifier = OnnxClassifier(
        model_dir,
        options.provider,
        options.intra_op_threads,
        options.max_length,
        spin=options.spin,
        long_text=options.long_text,
    )
    classifier.info = replace(classifier.info, revision=model_revision(model_dir))
    return classifier


def info_labels(info: ModelInfo, model_dir: Path | str) -> dict[str, str]:
    """The `sm_model` info metric's labels for the active model."""
    return {**{k: str(v) for k, v in vars(info).items()}, "model_dir": str(model_dir)}


class SwapFailed(Exception):
    """A swap that did not happen; the old model still serves. `status` is the HTTP answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class SwapObserver(Protocol):
    """Metrics hook (the worker's Prometheus metrics implement it)."""

    def model_swapped(self, ok: bool, at: float) -> None: ...


class _Unobserved:
    def model_swapped(self, ok: bool, at: float) -> None:
        return None


class ModelSwapper:
    """One swap at a time; a second request while one loads is refused (409), not queued."""

    def __init__(
        self,
        runner: InferenceRunner,
        load: Callable[[Path], StagedClassifier],
        model_dir: Path,
        observer: SwapObserver | None = None,
        on_active: Callable[[StagedClassifier, Path], None] | None = None,
    ) -> None:
        self.runner = runner
        self.model_dir = model_dir
        self._load = load
        self._on_active = on_active or (lambda classifier, path: None)
        self._busy = False
        self.observer = observer or _Unobserved()

    async def swap(self, model_dir: Path) -> ModelInfo:
        if self._busy:
            raise SwapFailed(409, "another model swap is under way")
        self._busy = True
        try:
            started = time.monotonic()
            try:
                new = await asyncio.to_thread(self._load_and_warm, model_dir)
            except Exception as exc:  # any load failure keeps the old model
                self.observer.model_swapped(False, time.time())
                reason = f"{type(exc).__name__}: {exc}"
                log.error("model swap to %s failed, keeping %s: %s", model_dir, self.model_dir, reason)
                raise SwapFailed(422, reason) from exc
            old = self.runner.swap(new)
            previous, self.model_dir = self.model_dir, model_dir
            self.observer.model_swapped(True, time.time())
            self._on_active(new, model_dir)
            log.info(
                "model swapped: %s v%s (%s) -> %s v%s (%s), loaded and warmed in %.1fs",
                old.info.name,
                old.info.version,
                previous,
                new.info.name,
                new.info.version,
                model_dir,
                time.monotonic() - started,
            )
            return new.info
        finally:
            self._busy = False

    def _load_and_warm(self, model_dir: Path) -> StagedClassifier:
        classifier = self._load(model_dir)
        # first-run allocations happen here, not on a live batch
        results = classifier.classify(WARMUP_TEXTS, WARMUP_DOMAINS)
        if len(results) != len(WARMUP_TEXTS):
            raise RuntimeError(f"warm-up returned {len(results)} results for {len(WARMUP_TEXTS)} texts")
        return classifier

    def reload(self, read_model_dir: Callable[[], Path]) -> asyncio.Task[Any] | None:
        """SIGHUP: swap to the model directory the settings name now, if it changed."""
        try:
            wanted = read_model_dir()
        except Exception:
            log.exception("SIGHUP: could not re-read SM_MODEL_DIR; keeping %s", self.model_dir)
            return None
        if wanted == self.model_dir:
            log.info("SIGHUP: SM_MODEL_DIR is still %s; nothing to do", wanted)
            return None
        task = asyncio.get_running_loop().create_task(self.swap(wanted))
        task.add_done_callback(_swallow)  # failures are already logged and counted
        return task

    def on_sighup(self, read_model_dir: Callable[[], Path]) -> None:
        """Install `reload` as the running loop's SIGHUP handler."""
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, lambda: self.reload(read_model_dir))


def _swallow(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
