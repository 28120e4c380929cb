"""The shipped model labels a handful of obvious cases. Few on purpose; not tuned to them."""

from __future__ import annotations

from stream_app.engine.onnx_classifier import OnnxClassifier

OBVIOUS = [
    ("I absolutely love this, best purchase ever!", "positive"),
    ("This is terrible, it broke after one day and support ignored me.", "negative"),
    ("Worst airline experience of my life, never again.", "negative"),
    ("What a fantastic, heartwarming film.", "positive"),
    ("The meeting is scheduled for 3pm on Tuesday.", "neutral"),
]


def test_obvious_cases(model_dir):
    classifier = OnnxClassifier(model_dir, provider="cpu")
    labels = [r.label for r in classifier.classify([t for t, _ in OBVIOUS])]
    assert labels == [label for _, label in OBVIOUS]
