"""A classifier that answers instantly, behind the same protocol as the ONNX one.

Bench-only: it prices everything but the model (Kafka, validation, publishing, Redis, Faust),
see `bench/spine_bench.py --null-model`. A worker loads it when `SM_MODEL_DIR=null:`; its
`ScoredEvent`s say `model_name="null"`, so they cannot pass for real scores.

The label is a cheap function of the text's length, so the aggregates, the entity paths and
the alert detector see all three labels rather than one constant.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stream_app.engine.types import DOMAINS, LABELS, ModelInfo, Sentiment, resolve_domains

NULL_MODEL_DIR = "null:"
_ANSWERS = (
    Sentiment.from_probabilities([0.70, 0.20, 0.10]),
    Sentiment.from_probabilities([0.15, 0.70, 0.15]),
    Sentiment.from_probabilities([0.10, 0.20, 0.70]),
)


def is_null_model(model_dir: Path | str) -> bool:
    """`Path("null:")` keeps its text, so the setting can stay a `Path`."""
    return str(model_dir) == NULL_MODEL_DIR


class NullClassifier:
    """Implements `Classifier` and `StagedClassifier`; a few hundred nanoseconds per text."""

    provider = "none"
    precision = "none"

    def __init__(self, version: str = "0") -> None:
        self.labels = list(LABELS)
        self.info = ModelInfo(name="null", version=version, provider=self.provider, precision=self.precision)

    def tokenize(self, texts: Sequence[object], domains: Sequence[str] | None = None) -> list[int]:
        resolve_domains(len(texts), domains)  # the same checks as a real model; no head to pick
        return [len(t) if isinstance(t, str) else 0 for t in texts]

    def forward(self, slices: list[int]) -> list[int]:
        return slices

    def postprocess(self, count: int, results: list[int]) -> list[Sentiment]:
        if len(results) != count:
            raise ValueError(f"{len(results)} results for {count} texts")
        return [_ANSWERS[n % 3] for n in results]

    def classify(self, texts: Sequence[object], domains: Sequence[str] | None = None) -> list[Sentiment]:
        return self.postprocess(len(texts), self.forward(self.tokenize(texts, domains)))

    def label_floors(self) -> dict[str, float]:
        """No label noise to allow for: its labels are a function of length, not a model's guess."""
        return dict.fromkeys(DOMAINS, 0.0)
