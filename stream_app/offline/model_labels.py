"""Labels from a model for `alerts evaluate --score-with`: the end-to-end half of the evaluation.

Each distinct text is scored once, through the serving engine (`OnnxClassifier`), in chunks of
256. The scenario generator draws texts from a pool of a few thousand dev texts, so a week of
several hundred thousand events costs only as many forward passes as the pool has texts.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

CHUNK = 256


def label_texts(model_dir: Path, texts: Iterable[str], chunk: int = CHUNK) -> dict[str, str]:
    """text -> the model's label, for every distinct text."""
    from stream_app.engine.onnx_classifier import OnnxClassifier

    distinct = sorted(set(texts))
    classifier = OnnxClassifier(model_dir, provider="cpu")
    labels: dict[str, str] = {}
    for first in range(0, len(distinct), chunk):
        piece = distinct[first : first + chunk]
        for text, result in zip(piece, classifier.classify(piece), strict=True):
            labels[text] = result.label
    return labels
