"""Sentiment inference: the classifier seams (`Classifier`, `StagedClassifier`) and the ONNX Runtime implementation."""

from stream_app.engine.types import LABELS, AsyncClassifier, Classifier, Sentiment, StagedClassifier

__all__ = ["LABELS", "AsyncClassifier", "Classifier", "Sentiment", "StagedClassifier"]
