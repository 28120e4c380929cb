"""Classification metrics in plain numpy, so evaluation needs no sklearn or torch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stream_app.engine.types import LABELS


@dataclass(frozen=True)
class Report:
    n: int
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]
    labels: list[str]

    def as_json(self) -> dict[str, object]:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "per_class": self.per_class,
            "labels": self.labels,
            "confusion": self.confusion,
        }


def score_predictions(gold: npt.NDArray[np.int64], pred: npt.NDArray[np.int64], label_ids: list[int]) -> Report:
    """Confusion matrix and F1 over `label_ids` only (two classes for a binary file)."""
    index = {label: i for i, label in enumerate(label_ids)}
    confusion = np.zeros((len(label_ids), len(label_ids)), dtype=np.int64)
    for g, p in zip(gold.tolist(), pred.tolist(), strict=True):
        confusion[index[g], index[p]] += 1
    per_class: dict[str, dict[str, float]] = {}
    f1s = []
    for i, label in enumerate(label_ids):
        tp = float(confusion[i, i])
        precision = tp / max(float(confusion[:, i].sum()), 1.0)
        recall = tp / max(float(confusion[i, :].sum()), 1.0)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1s.append(f1)
        per_class[LABELS[label]] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": float(confusion[i, :].sum()),
        }
    n = int(confusion.sum())
    return Report(
        n=n,
        accuracy=float(np.trace(confusion)) / max(n, 1),
        macro_f1=float(np.mean(f1s)),
        per_class=per_class,
        confusion=confusion.tolist(),
        labels=[LABELS[i] for i in label_ids],
    )


def decide(
    probs: npt.NDArray[np.float32], binary: bool, offsets: Sequence[float] = (0.0, 0.0, 0.0)
) -> npt.NDArray[np.int64]:
    """The decision rule: argmax of the three log-probabilities moved by the model's decision
    offsets (`calibration.json`; zero without one), or of negative vs positive on binary data."""
    scores = np.log(np.maximum(probs, 1e-12)) + np.asarray(offsets, dtype=np.float32)
    if binary:
        neg, pos = LABELS.index("negative"), LABELS.index("positive")
        return np.where(scores[:, pos] >= scores[:, neg], pos, neg).astype(np.int64)
    return np.asarray(scores.argmax(axis=1), dtype=np.int64)
