"""Sentiment inference: the `Classifier` seam and its ONNX Runtime implementation."""

from stream_app.engine.types import Classifier, Sentiment

__all__ = ["Classifier", "Sentiment"]
