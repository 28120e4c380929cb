"""What the async runner and the live model swap need from a classifier: three stages and an identity.

`OnnxClassifier` and the bench-only `NullClassifier` both implement it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from stream_app.engine.onnx_classifier import ModelInfo
from stream_app.engine.types import Sentiment


@runtime_checkable
class StagedClassifier(Protocol):
    """`postprocess(n, forward(tokenize(texts)))` equals `classify(texts)`: n results, in input order."""

    info: ModelInfo

    def tokenize(self, texts: Sequence[object]) -> Any: ...

    def forward(self, slices: Any) -> Any: ...

    def postprocess(self, count: int, results: Any) -> list[Sentiment]: ...

    def classify(self, texts: Sequence[object]) -> list[Sentiment]: ...
