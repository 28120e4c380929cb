"""What the async runner and the live model swap need from a classifier: three stages and an identity.

`OnnxClassifier` and the bench-only `NullClassifier` both implement it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from stream_app.engine.types import ModelInfo, Sentiment


@runtime_checkable
class StagedClassifier(Protocol):
    """`postprocess(n, forward(tokenize(texts, domains)))` equals `classify(texts, domains)`: n
    results, in input order. What `tokenize` returns carries each text's domain (which head
    scores it) through `forward` and `postprocess`, so a job needs no other state.
    `label_floors` gives the detector each domain's label floor (see `calibration.py`)."""

    info: ModelInfo

    def tokenize(self, texts: Sequence[object], domains: Sequence[str] | None = None) -> Any: ...

    def forward(self, slices: Any) -> Any: ...

    def postprocess(self, count: int, results: Any) -> list[Sentiment]: ...

    def classify(self, texts: Sequence[object], domains: Sequence[str] | None = None) -> list[Sentiment]: ...

    def label_floors(self) -> dict[str, float]: ...
