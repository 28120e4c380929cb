"""Sentiment inference: the classifier seams (`Classifier`, `StagedClassifier`) and the ONNX Runtime implementation."""

from stream_app.engine.staged import StagedClassifier
from stream_app.engine.types import LABELS, AsyncClassifier, Classifier, Sentiment

__all__ = ["LABELS", "AsyncClassifier", "Classifier", "Sentiment", "StagedClassifier"]
