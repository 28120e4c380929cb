"""The ONNX Runtime classifier: CUDA FP16 with I/O binding when present, else CPU INT8.

Three kinds of model directory load here, told apart by `labels.json`:
- one head (v2 and earlier): `logits` is `[batch, 3]`; the domain of a text changes nothing
  but which calibration applies (the same one, from a flat `calibration.json`);
- domain heads (`"heads": ["social", "finance", "reviews"]`): `logits` is `[batch, heads, 3]`
  and each row keeps its own domain's head (a domain without a head uses `DEFAULT_DOMAIN`'s);
- a domain prefix (`"domain_prefix": true`): one head, reading `with_domain_prefix(domain, text)`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from stream_app.engine.calibration import Calibration, DomainCalibrations
from stream_app.engine.precision import resolve_model_file
from stream_app.engine.tokenize import BucketingTokenizer, EncodedSlice, LongText, merge_windows
from stream_app.engine.types import DEFAULT_DOMAIN, DOMAINS, ModelInfo, Sentiment

log = logging.getLogger(__name__)

Provider = Literal["auto", "cpu", "cuda"]


def choose_provider(requested: Provider, available: Sequence[str]) -> str:
    """'auto' takes CUDA when onnxruntime-gpu sees a GPU; a forced 'cuda' falls back with a warning."""
    has_cuda = "CUDAExecutionProvider" in available
    if requested == "cpu" or not has_cuda:
        if requested == "cuda":
            log.warning("CUDA was requested but onnxruntime offers %s; using CPU", list(available))
        return "cpu"
    return "cuda"


class OnnxClassifier:
    """Implements `Classifier`. Split into tokenize / forward / postprocess so the async
    runner can overlap tokenizing one batch with the forward pass of the previous one."""

    def __init__(
        self,
        model_dir: Path,
        provider: Provider = "auto",
        intra_op_threads: int = 0,
        max_length: int = 128,
        precision: str | None = None,
        spin: bool = True,
        model_file: Path | None = None,
        long_text: LongText = "head_tail",
    ) -> None:
        import onnxruntime as ort

        self.model_dir = model_dir
        meta = json.loads((model_dir / "labels.json").read_text())
        self.labels: list[str] = meta["labels"]
        self.heads: tuple[str, ...] = tuple(meta.get("heads", ()))
        self.domain_prefix = bool(meta.get("domain_prefix", False))
        self._head_of_domain = head_index(self.heads)
        chosen = choose_provider(provider, ort.get_available_providers())
        self.precision = precision or ("fp16" if chosen == "cuda" else "int8")
        # An explicit file (an A/B bench's variant) skips the derivation; the directory still
        # supplies the tokenizer and labels.
        model_file = model_file or resolve_model_file(model_dir, self.precision)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        if not spin:  # idle ORT threads sleep instead of spinning: CPU for Kafka, Redis, the event loop
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if chosen == "cuda" else ["CPUExecutionProvider"]
        self._session = ort.InferenceSession(str(model_file), options, providers=providers)
        active = self._session.get_providers()[0]
        self.provider = "cuda" if active == "CUDAExecutionProvider" else "cpu"
        self._input_names = {i.name for i in self._session.get_inputs()}
        rank = len(self._session.get_outputs()[0].shape or ())  # 0: the graph does not say
        if rank and rank != (3 if self.heads else 2):
            raise ValueError(f"{model_file}: logits of rank {rank} for heads {list(self.heads)} in labels.json")
        self.tokenizer = BucketingTokenizer.from_dir(
            model_dir, max_length, long_text=long_text, domain_prefix=self.domain_prefix
        )
        # Applied here, at load, so `score`, `model evaluate` and the worker see the same numbers.
        self.calibrations = DomainCalibrations.load(model_dir)
        self.info = ModelInfo(
            name=str(meta.get("name", model_dir.name)),
            version=str(meta.get("version", "0")),
            provider=self.provider,
            precision=self.precision,
        )
        log.info("model %s v%s on %s (%s, %s)", self.info.name, self.info.version, active, self.precision, model_file)

    @property
    def calibration(self) -> Calibration:
        """The `DEFAULT_DOMAIN` head's calibration (the only one of a flat file)."""
        return self.calibrations[DEFAULT_DOMAIN]

    def label_floors(self) -> dict[str, float]:
        """Domain -> `label_floor` of the head that scores it, for the spike detector."""
        return self.calibrations.label_floors()

    def tokenize(self, texts: Sequence[object], domains: Sequence[str] | None = None) -> list[EncodedSlice]:
        return self.tokenizer.encode(texts, domains)

    def forward(self, slices: list[EncodedSlice]) -> list[tuple[EncodedSlice, npt.NDArray[np.float32]]]:
        return [(piece, self._run(piece)) for piece in slices]

    def _run(self, piece: EncodedSlice) -> npt.NDArray[np.float32]:
        feeds: dict[str, Any] = {
            "input_ids": piece.input_ids,
            "attention_mask": piece.attention_mask,
            "token_type_ids": piece.token_type_ids,
        }
        feeds = {k: v for k, v in feeds.items() if k in self._input_names}
        if self.provider == "cuda":
            return self._own_heads(piece, self._run_bound(feeds))
        return self._own_heads(piece, np.asarray(self._session.run(["logits"], feeds)[0], dtype=np.float32))

    def _own_heads(self, piece: EncodedSlice, logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """`[rows, heads, 3]` -> `[rows, 3]`: each row's own domain's head (one-head models pass)."""
        if logits.ndim == 2:
            return logits
        heads = self._head_of_domain[piece.domains]
        return np.ascontiguousarray(logits[np.arange(len(heads)), heads])

    def _run_bound(self, feeds: dict[str, Any], device: str = "cuda") -> npt.NDArray[np.float32]:
        """I/O binding copies inputs to the GPU once and keeps the output buffer on device.
        (`device="cpu"` runs the same code on the CPU provider, for tests.)"""
        binding = self._session.io_binding()
        for name, array in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(array))
        binding.bind_output("logits", device)
        self._session.run_with_iobinding(binding)
        return np.asarray(binding.copy_outputs_to_cpu()[0], dtype=np.float32)

    def postprocess(self, count: int, results: list[tuple[EncodedSlice, npt.NDArray[np.float32]]]) -> list[Sentiment]:
        probs = self._merge(count, results)
        domains = np.zeros(count, dtype=np.int64)
        for piece, _ in results:
            domains[piece.positions] = piece.domains
        labels = self.calibrations.decide(probs, domains)
        return [
            Sentiment.from_probabilities(row.tolist(), int(label)) for row, label in zip(probs, labels, strict=True)
        ]

    def _merge(
        self, count: int, results: list[tuple[EncodedSlice, npt.NDArray[np.float32]]]
    ) -> npt.NDArray[np.float32]:
        """Calibrated probabilities per text (a long text's windows averaged)."""
        calibrated = [(piece, self.calibrations.probabilities(logits, piece.domains)) for piece, logits in results]
        if not calibrated:
            return np.zeros((count, len(self.labels)), dtype=np.float32)
        return merge_windows(count, calibrated)

    def classify(self, texts: Sequence[object], domains: Sequence[str] | None = None) -> list[Sentiment]:
        if not texts:
            return []
        return self.postprocess(len(texts), self.forward(self.tokenize(texts, domains)))

    def probabilities(self, texts: Sequence[object], domains: Sequence[str] | None = None) -> npt.NDArray[np.float32]:
        """Calibrated class probabilities in input order, for evaluation and parity checks."""
        return self._merge(len(texts), self.forward(self.tokenize(texts, domains)))

    def logits(self, texts: Sequence[object], domains: Sequence[str] | None = None) -> npt.NDArray[np.float32]:
        """Raw logits of each text's own head in input order (first window of a long text),
        for fitting the calibration."""
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for piece, logits in self.forward(self.tokenize(texts, domains)):
            out[piece.positions] = logits
        return out


def head_index(heads: Sequence[str]) -> npt.NDArray[np.int64]:
    """For each domain in `DOMAINS`, the output head that scores it: its own when the model has
    one, else `DEFAULT_DOMAIN`'s (or the first head). All zeros for a one-head model."""
    unknown = sorted(set(heads) - set(DOMAINS))
    if unknown:
        raise ValueError(f"labels.json names unknown heads {unknown}; expected some of {DOMAINS}")
    if not heads:
        return np.zeros(len(DOMAINS), dtype=np.int64)
    fallback = heads.index(DEFAULT_DOMAIN) if DEFAULT_DOMAIN in heads else 0
    return np.array([heads.index(d) if d in heads else fallback for d in DOMAINS], dtype=np.int64)
