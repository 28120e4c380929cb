"""The classifier protocol, checked on the ONNX model and the bench-only null model alike,
and the runner's live swap (one model per batch, in order, the version reported)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from stream_app.engine import Classifier
from stream_app.engine.null import NullClassifier, is_null_model
from stream_app.engine.onnx_classifier import OnnxClassifier
from stream_app.engine.runner import InferenceRunner
from stream_app.engine.staged import StagedClassifier
from tests.unit.test_engine import EDGE_CASES


@pytest.fixture(scope="module", params=["onnx", "null"])
def any_classifier(request: pytest.FixtureRequest, model_dir: Path) -> StagedClassifier:
    if request.param == "null":
        return NullClassifier()
    return OnnxClassifier(model_dir, provider="cpu", intra_op_threads=1)


def test_implements_both_protocols(any_classifier):
    assert isinstance(any_classifier, Classifier)
    assert isinstance(any_classifier, StagedClassifier)
    assert any_classifier.info.name and any_classifier.info.version


def test_every_edge_case_gets_a_valid_result(any_classifier):
    results = any_classifier.classify(EDGE_CASES)
    assert len(results) == len(EDGE_CASES)
    for result in results:
        assert result.label in {"negative", "neutral", "positive"}
        assert abs(sum(result.probabilities.values()) - 1) < 1e-4
        assert -1 <= result.score <= 1
        assert result.score == pytest.approx(result.probabilities["positive"] - result.probabilities["negative"])


def test_stages_compose_to_classify(any_classifier):
    texts = ["good", "bad day", "", "x" * 300, "meh " * 50]
    staged = any_classifier.postprocess(len(texts), any_classifier.forward(any_classifier.tokenize(texts)))
    assert [s.label for s in staged] == [s.label for s in any_classifier.classify(texts)]


def test_empty_batch_is_empty(any_classifier):
    assert any_classifier.classify([]) == []


def test_results_keep_input_order(any_classifier):
    texts = [f"text {i} " + "w " * i for i in range(20)]
    batch = any_classifier.classify(texts)
    assert [r.label for r in batch] == [any_classifier.classify([t])[0].label for t in texts]


async def test_runner_serves_either_classifier(any_classifier):
    runner = InferenceRunner(any_classifier, queue_depth=1)
    await runner.start()
    try:
        results, info = await runner.classify_versioned(["one", "two", "three"])
        assert len(results) == 3 and info == any_classifier.info
    finally:
        await runner.stop()


def test_null_model_setting():
    assert is_null_model(Path("null:")) and is_null_model("null:")
    assert not is_null_model(Path("models/default"))
    assert {s.label for s in NullClassifier().classify(["a", "ab", "abc"])} == {"negative", "neutral", "positive"}


class _Slow(NullClassifier):
    """Tokenizing blocks until released, so a swap can land while a batch is in flight."""

    def __init__(self, version: str, gate: asyncio.Event | None, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(version)
        self.gate, self.loop = gate, loop

    def tokenize(self, texts, domains=None):  # type: ignore[no-untyped-def]
        if self.gate is not None:
            asyncio.run_coroutine_threadsafe(self.gate.wait(), self.loop).result(5)
        return super().tokenize(texts, domains)


async def test_swap_lands_between_batches_and_each_batch_names_its_model():
    loop = asyncio.get_running_loop()
    gate = asyncio.Event()
    old, new = _Slow("1", gate, loop), _Slow("2", None, loop)
    runner = InferenceRunner(old, queue_depth=2)
    await runner.start()
    try:
        first = asyncio.create_task(runner.classify_versioned(["in flight"] * 3))
        await asyncio.sleep(0.05)  # the first batch is tokenizing on the old model
        assert runner.swap(new) is old
        second = asyncio.create_task(runner.classify_versioned(["after"] * 2))
        gate.set()
        (r1, i1), (r2, i2) = await first, await second
        assert (len(r1), i1.version) == (3, "1"), "a batch in flight finishes on the model it started on"
        assert (len(r2), i2.version) == (2, "2")
    finally:
        await runner.stop()


def test_io_binding_path_matches_a_plain_run(model_dir):
    """`_run_bound` (the CUDA path) on the CPU provider: same logits as `session.run`, per slice."""
    exact = OnnxClassifier(model_dir, provider="cpu", intra_op_threads=1, precision="fp32")
    for piece in exact.tokenize(["short", "a somewhat longer text about a product " * 3, "ok"]):
        feeds = {
            k: v
            for k, v in {
                "input_ids": piece.input_ids,
                "attention_mask": piece.attention_mask,
                "token_type_ids": piece.token_type_ids,
            }.items()
            if k in exact._input_names
        }
        bound = exact._run_bound(feeds, device="cpu")
        plain = exact._session.run(["logits"], feeds)[0]
        assert bound.dtype == np.float32 and bound.shape == plain.shape
        assert np.allclose(bound, plain, atol=1e-5)
