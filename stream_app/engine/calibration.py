"""Post-hoc calibration of the classifier's outputs, stored beside the model.

Two separate corrections, both fitted on dev splits only (`sentiment-monitor model calibrate`):
- `temperature` and `bias` turn logits into probabilities that mean what they say
  (`softmax(logits / T + bias)`, fitted by log-loss): the service sums and averages them.
- `offsets` move the decision, not the probabilities: the label is
  `argmax(log p + offsets)`. They are fitted for balanced (macro) F1, so a minority class such
  as `negative` is not swallowed by `neutral` on general posts.

A model directory without `calibration.json` gets the identity, so older models load unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

CALIBRATION_FILE = "calibration.json"


def softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True), dtype=np.float32)


@dataclass(frozen=True)
class Calibration:
    temperature: float = 1.0
    bias: tuple[float, ...] = (0.0, 0.0, 0.0)
    offsets: tuple[float, ...] = (0.0, 0.0, 0.0)
    # The share of non-negative dev posts this model labels negative (mean over the 3-class dev
    # sets). Not used for scoring: the spike detector reads it to see a true doubling of the
    # negative share through the model's label noise (DetectorParams.label_floor).
    label_floor: float = 0.0
    report: dict[str, Any] = field(default_factory=dict, compare=False)

    def probabilities(self, logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        scaled = logits / np.float32(self.temperature) + np.asarray(self.bias, dtype=np.float32)
        return softmax(scaled)

    def decide(self, probs: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
        """Label ids: argmax of log-probabilities moved by the decision offsets."""
        scores = np.log(np.maximum(probs, 1e-12)) + np.asarray(self.offsets, dtype=np.float32)
        return np.asarray(scores.argmax(axis=1), dtype=np.int64)

    @property
    def is_identity(self) -> bool:
        return self.temperature == 1.0 and not any(self.bias) and not any(self.offsets)

    @classmethod
    def load(cls, model_dir: Path) -> Calibration:
        path = model_dir / CALIBRATION_FILE
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        return cls(
            temperature=float(data["temperature"]),
            bias=_floats(data.get("bias", (0.0, 0.0, 0.0))),
            offsets=_floats(data.get("offsets", (0.0, 0.0, 0.0))),
            label_floor=float(data.get("label_floor", 0.0)),
            report=data.get("report", {}),
        )

    def save(self, model_dir: Path) -> Path:
        path = model_dir / CALIBRATION_FILE
        payload = asdict(self)
        payload["bias"] = list(self.bias)
        payload["offsets"] = list(self.offsets)
        path.write_text(json.dumps(payload, indent=2) + "\n")
        return path


def _floats(values: Sequence[Any]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)
