"""Post-hoc calibration of the classifier's outputs, stored beside the model.

Two separate corrections, both fitted on dev splits only (`sentiment-monitor model calibrate`):
- `temperature` and `bias` turn logits into probabilities that mean what they say
  (`softmax(logits / T + bias)`, fitted by log-loss): the service sums and averages them.
- `offsets` move the decision, not the probabilities: the label is
  `argmax(log p + offsets)`. They are fitted for balanced (macro) F1, so a minority class such
  as `negative` is not swallowed by `neutral` on general posts.

Model v3 has one calibration per domain head (`{"heads": {"social": {...}, ...}}`): each head
reads its own sources' conventions, so one temperature or decision offset cannot fit all three.
`DomainCalibrations` holds them; the flat file of earlier models loads as the same calibration
for every domain. A model directory without `calibration.json` gets the identity, so older
models load unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from stream_app.engine.types import DEFAULT_DOMAIN, DOMAINS

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
        """The `DEFAULT_DOMAIN` head's calibration (a flat file's only one): what callers that
        predate domain heads (one label floor for the detector) keep reading."""
        return DomainCalibrations.load(model_dir)[DEFAULT_DOMAIN]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        return cls(
            temperature=float(data["temperature"]),
            bias=_floats(data.get("bias", (0.0, 0.0, 0.0))),
            offsets=_floats(data.get("offsets", (0.0, 0.0, 0.0))),
            label_floor=float(data.get("label_floor", 0.0)),
            report=data.get("report", {}),
        )

    def to_json(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["bias"] = list(self.bias)
        payload["offsets"] = list(self.offsets)
        return payload

    def save(self, model_dir: Path) -> Path:
        """The flat, one-calibration file (a model without heads)."""
        path = model_dir / CALIBRATION_FILE
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path


@dataclass(frozen=True)
class DomainCalibrations:
    """One `Calibration` per domain in `DOMAINS`. `per_head` is False when the file was flat (or
    absent): then every domain shares one calibration, as before heads existed."""

    by_domain: dict[str, Calibration]
    per_head: bool = True

    @classmethod
    def uniform(cls, calibration: Calibration) -> DomainCalibrations:
        return cls({domain: calibration for domain in DOMAINS}, per_head=False)

    def __getitem__(self, domain: str) -> Calibration:
        return self.by_domain[domain]

    def label_floors(self) -> dict[str, float]:
        """Domain -> the share of its non-negative dev posts its head labels negative."""
        return {domain: self.by_domain[domain].label_floor for domain in DOMAINS}

    @property
    def is_identity(self) -> bool:
        return all(c.is_identity for c in self.by_domain.values())

    def probabilities(
        self, logits: npt.NDArray[np.float32], domain_ids: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float32]:
        """Row i calibrated by the head of `DOMAINS[domain_ids[i]]`."""
        if not self.per_head:
            return self.by_domain[DEFAULT_DOMAIN].probabilities(logits)
        out = np.empty_like(logits, dtype=np.float32)
        for index in np.unique(domain_ids).tolist():
            rows = domain_ids == index
            out[rows] = self.by_domain[DOMAINS[index]].probabilities(logits[rows])
        return out

    def decide(self, probs: npt.NDArray[np.float32], domain_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Label ids, each row by its own domain's decision offsets."""
        if not self.per_head:
            return self.by_domain[DEFAULT_DOMAIN].decide(probs)
        out = np.empty(len(probs), dtype=np.int64)
        for index in np.unique(domain_ids).tolist():
            rows = domain_ids == index
            out[rows] = self.by_domain[DOMAINS[index]].decide(probs[rows])
        return out

    @classmethod
    def load(cls, model_dir: Path) -> DomainCalibrations:
        """Per-head (`{"heads": {...}}`), flat (one calibration for every domain) or absent
        (identity). A domain the file does not name gets the identity."""
        path = model_dir / CALIBRATION_FILE
        if not path.exists():
            return cls.uniform(Calibration())
        data = json.loads(path.read_text())
        if "heads" not in data:
            return cls.uniform(Calibration.from_json(data))
        heads: dict[str, Any] = data["heads"]
        unknown = sorted(set(heads) - set(DOMAINS))
        if unknown:
            raise ValueError(f"{path}: unknown heads {unknown}; expected some of {DOMAINS}")
        return cls({d: Calibration.from_json(heads[d]) if d in heads else Calibration() for d in DOMAINS})

    def save(self, model_dir: Path) -> Path:
        """Per-head when `per_head`, else the flat file older engines also read."""
        if not self.per_head:
            return self.by_domain[DEFAULT_DOMAIN].save(model_dir)
        path = model_dir / CALIBRATION_FILE
        payload = {"heads": {d: self.by_domain[d].to_json() for d in DOMAINS}}
        path.write_text(json.dumps(payload, indent=2) + "\n")
        return path


def _floats(values: Sequence[Any]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)
