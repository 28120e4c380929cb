"""The ONNX engine on the shipped model: edge cases, order, async runner, provider choice."""

from __future__ import annotations

import asyncio

import pytest

from stream_app.engine import Classifier, Sentiment
from stream_app.engine.onnx_classifier import OnnxClassifier, choose_provider
from stream_app.engine.runner import InferenceRunner


@pytest.fixture(scope="module")
def classifier(model_dir) -> OnnxClassifier:
    return OnnxClassifier(model_dir, provider="cpu", intra_op_threads=1)


EDGE_CASES = ["", "   \n\t", "😀😀🔥", "x" * 200_000, "lone \ud800 surrogate", "\udcff", "\x00nul", "ok " * 5000]


def test_is_a_classifier(classifier):
    assert isinstance(classifier, Classifier)


# Edge cases on every input: tests/test_engine_protocol.py, for the ONNX and the null classifier alike.


def test_results_come_back_in_input_order(model_dir):
    # FP32, because INT8's dynamic activation scales make scores depend slightly on the batch.
    exact = OnnxClassifier(model_dir, provider="cpu", intra_op_threads=1, precision="fp32")
    texts = [f"sample {i} is {'great' if i % 3 else 'awful'} " + "word " * (37 - i) for i in range(37)]
    batch = exact.classify(texts)
    one_by_one = [exact.classify([t])[0] for t in texts]
    for a, b in zip(batch, one_by_one, strict=True):
        assert a.label == b.label
        assert a.score == pytest.approx(b.score, abs=1e-4)


def test_empty_batch_is_empty(classifier):
    assert classifier.classify([]) == []


def test_cpu_uses_int8_and_reports_it(classifier):
    assert (classifier.provider, classifier.precision) == ("cpu", "int8")


def test_provider_choice_falls_back_to_cpu_without_cuda():
    assert choose_provider("auto", ["CPUExecutionProvider"]) == "cpu"
    assert choose_provider("cuda", ["CPUExecutionProvider"]) == "cpu"
    assert choose_provider("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == "cuda"
    assert choose_provider("cpu", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == "cpu"


def test_forced_cuda_on_a_cpu_machine_still_serves(model_dir):
    forced = OnnxClassifier(model_dir, provider="cuda", intra_op_threads=1)
    assert forced.provider == "cpu"
    assert len(forced.classify(["fine"])) == 1


async def test_runner_keeps_order_across_concurrent_callers(classifier):
    runner = InferenceRunner(classifier, queue_depth=1)
    await runner.start()
    try:
        batches = [[f"caller {c} text {i}" for i in range(c + 1)] for c in range(6)]
        results = await asyncio.gather(*(runner.classify_batch(b) for b in batches))
        for batch, result in zip(batches, results, strict=True):
            assert [r.label for r in result] == [r.label for r in classifier.classify(batch)]
    finally:
        await runner.stop()


async def test_runner_applies_backpressure_when_queues_are_full(classifier):
    runner = InferenceRunner(classifier, queue_depth=1)  # stages not started: nothing drains
    first = asyncio.create_task(runner.classify_batch(["a"]))
    second = asyncio.create_task(runner.classify_batch(["b"]))
    await asyncio.sleep(0.05)
    assert runner._incoming.full()
    assert not first.done() and not second.done()
    await runner.start()
    assert len(await first) == 1 and len(await second) == 1
    await runner.stop()


def test_sentiment_score_is_polarity():
    s = Sentiment.from_probabilities([0.7, 0.2, 0.1])
    assert s.label == "negative" and s.score == pytest.approx(-0.6)
