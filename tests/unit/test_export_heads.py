"""Model v3 export: a domain-heads checkpoint becomes one graph with `[batch, heads, 3]` logits,
a domain-prefix checkpoint says so in labels.json, parity holds per head, and the engine reads
each row with its own head (or behind its own prefix) exactly as PyTorch does."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stream_app.engine.types import DOMAINS, with_domain_prefix
from tests.unit.test_export import tiny_checkpoint, tiny_texts

pytest.importorskip("torch", reason="export needs the train extra")
pytestmark = pytest.mark.train

ROW_DOMAINS = [DOMAINS[i % len(DOMAINS)] for i in range(60)]


@pytest.fixture(scope="module")
def heads_export(tmp_path_factory):
    from stream_app.offline.model.export import export_model

    root = tmp_path_factory.mktemp("heads")
    checkpoint = tiny_checkpoint(root, num_labels=3 * len(DOMAINS), domains=list(DOMAINS))
    return export_model(checkpoint, root / "model", tiny_texts(), name="tiny-heads"), checkpoint


@pytest.fixture(scope="module")
def prefix_export(tmp_path_factory):
    from stream_app.offline.model.export import export_model

    root = tmp_path_factory.mktemp("prefix")
    checkpoint = tiny_checkpoint(root, domain_prefix=True)
    return export_model(checkpoint, root / "model", tiny_texts(), name="tiny-prefix"), checkpoint


def _torch_logits(checkpoint, texts: list[str]) -> np.ndarray:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    model = AutoModelForSequenceClassification.from_pretrained(str(checkpoint), attn_implementation="eager").eval()
    with torch.no_grad():
        return model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.numpy()


def test_heads_graph_outputs_batch_heads_labels(heads_export):
    import onnxruntime as ort

    result, _ = heads_export
    session = ort.InferenceSession(str(result.out / "model.fp32.onnx"), providers=["CPUExecutionProvider"])
    for batch, length in ((1, 3), (7, 50)):
        feeds = {n: np.ones((batch, length), dtype=np.int64) for n in ("input_ids", "attention_mask", "token_type_ids")}
        assert session.run(["logits"], feeds)[0].shape == (batch, len(DOMAINS), 3)
    assert json.loads((result.out / "labels.json").read_text())["heads"] == list(DOMAINS)


def test_heads_graph_keeps_the_pytorch_weight_names(heads_export):
    """`warmstart.py` reads a shipped graph's weights back by their PyTorch names."""
    import onnx

    result, _ = heads_export
    names = {i.name for i in onnx.load(str(result.out / "model.fp32.onnx")).graph.initializer}
    assert {"classifier.weight", "classifier.bias", "bert.pooler.dense.weight"} <= names


def test_heads_parity_holds_for_every_head(heads_export):
    result, _ = heads_export
    per_head = result.parity["per_head"]
    assert list(per_head) == list(DOMAINS)
    for figures in per_head.values():
        assert figures["fp32_max_abs_logit_diff"] <= 1e-4
        assert figures["int8_argmax_agreement"] >= 0.99
        assert figures["fp16_argmax_agreement"] >= 0.99
    assert result.parity["int8_argmax_agreement"] == min(f["int8_argmax_agreement"] for f in per_head.values())
    assert result.passed


def test_heads_graph_keeps_the_fusion(heads_export):
    result, _ = heads_export
    # the reshape after the classifier leaves every fusion of a one-head graph (2 layers here)
    assert result.fused_ops == {
        "EmbedLayerNormalization": 1,
        "Attention": 2,
        "BiasGelu": 2,
        "SkipLayerNormalization": 4,
    }


def test_the_engine_scores_each_row_with_its_own_head(heads_export):
    """FP32 engine logits equal PyTorch's, row i read from head DOMAINS[i % 3]."""
    from stream_app.engine.onnx_classifier import OnnxClassifier

    result, checkpoint = heads_export
    texts = tiny_texts(len(ROW_DOMAINS))
    reference = _torch_logits(checkpoint, texts).reshape(len(texts), len(DOMAINS), 3)
    wanted = reference[np.arange(len(texts)), [DOMAINS.index(d) for d in ROW_DOMAINS]]
    engine = OnnxClassifier(result.out, provider="cpu", precision="fp32")
    np.testing.assert_allclose(engine.logits(texts, ROW_DOMAINS), wanted, atol=1e-4)
    # and the default domain is the social head, for every row
    np.testing.assert_allclose(engine.logits(texts), reference[:, 0], atol=1e-4)
    int8 = OnnxClassifier(result.out, provider="cpu", precision="int8")
    agree = (int8.logits(texts, ROW_DOMAINS).argmax(1) == wanted.argmax(1)).mean()
    assert agree >= 0.95


def test_prefix_model_is_labelled_and_checked_per_domain(prefix_export):
    result, _ = prefix_export
    meta = json.loads((result.out / "labels.json").read_text())
    assert meta["domain_prefix"] is True and "heads" not in meta
    assert list(result.parity["per_head"]) == list(DOMAINS)
    assert result.passed


def test_the_engine_reads_a_prefix_model_text_behind_its_domain(prefix_export):
    from stream_app.engine.onnx_classifier import OnnxClassifier

    result, checkpoint = prefix_export
    texts = tiny_texts(len(ROW_DOMAINS))
    wanted = _torch_logits(checkpoint, [with_domain_prefix(d, t) for d, t in zip(ROW_DOMAINS, texts, strict=True)])
    engine = OnnxClassifier(result.out, provider="cpu", precision="fp32")
    np.testing.assert_allclose(engine.logits(texts, ROW_DOMAINS), wanted, atol=1e-4)
    # The prefix did change them (a random tiny model's logits differ by little, so relatively).
    served = engine.logits(texts, ROW_DOMAINS)
    plain = _torch_logits(checkpoint, texts)
    assert np.abs(served - plain).max() > 10 * np.abs(served - wanted).max()


def test_domain_prefix_is_read_from_the_run_summary_when_the_config_is_silent(tmp_path):
    from stream_app.offline.model.export import _reads_domain_prefix

    class Config:
        pass

    checkpoint = tmp_path / "run" / "checkpoint"
    checkpoint.mkdir(parents=True)
    assert _reads_domain_prefix(checkpoint, Config()) is False
    (checkpoint.parent / "train_summary.json").write_text(json.dumps({"config": {"domain_prefix": True}}))
    assert _reads_domain_prefix(checkpoint, Config()) is True
    said = Config()
    said.domain_prefix = False  # type: ignore[attr-defined]
    assert _reads_domain_prefix(checkpoint, said) is False
