"""Export a tiny randomly initialised BERT and check every precision's parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="export needs the train extra")
pytestmark = pytest.mark.train


TINY_VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    *"abcdefghijklmnopqrstuvwxyz",
    "good",
    "bad",
    "movie",
    "the",
    "was",
    "very",
    "not",
    "##s",
    "##ing",
    "!",
    ".",
    ",",
    ":",
    "social",
    "finance",
    "reviews",
]


def tiny_checkpoint(root, num_labels: int = 3, **config_extra):
    """A randomly initialised 2-layer BERT and its tokenizer, saved as a Hugging Face checkpoint
    (no hub download). `config_extra` lands in the config, e.g. `domains` for heads."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    root.mkdir(parents=True, exist_ok=True)
    (root / "vocab.txt").write_text("\n".join(TINY_VOCAB))
    tokenizer = BertTokenizerFast(vocab_file=str(root / "vocab.txt"))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(TINY_VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        num_labels=num_labels,
        max_position_embeddings=160,
        **config_extra,
    )
    checkpoint = root / "checkpoint"
    BertForSequenceClassification(config).save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    return checkpoint


def tiny_texts(n: int = 300) -> list[str]:
    rng = np.random.default_rng(0)
    words = ["good", "bad", "movie", "the", "was", "very", "not", "cat", "dog", "!"]
    return [" ".join(rng.choice(words, size=rng.integers(1, 30))) for _ in range(n)]


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    from stream_app.offline.model.export import export_model

    root = tmp_path_factory.mktemp("tiny")
    texts = tiny_texts()
    return export_model(tiny_checkpoint(root), root / "model", texts, name="tiny", version="0.0.1"), texts


def test_fp32_int8_fp16_parity(tiny_export):
    result, _ = tiny_export
    assert result.parity["fp32_max_abs_logit_diff"] <= 1e-4
    assert result.parity["int8_argmax_agreement"] >= 0.99
    assert result.parity["fp16_argmax_agreement"] >= 0.99
    assert result.passed


def test_graph_is_fused(tiny_export):
    result, _ = tiny_export
    assert result.fused_ops.get("Attention", 0) == 2
    assert result.fused_ops.get("SkipLayerNormalization", 0) >= 2


def test_model_dir_is_self_contained(tiny_export):
    result, _ = tiny_export
    names = {p.name for p in result.out.iterdir()}
    assert {
        "model.fp32.onnx",
        "model.int8.onnx",
        "model.fp16.onnx",
        "tokenizer.json",
        "labels.json",
        "MODEL_CARD.md",
    } <= names


def test_dynamic_axes_accept_any_batch_and_length(tiny_export):
    import onnxruntime as ort

    result, _ = tiny_export
    session = ort.InferenceSession(str(result.out / "model.fp32.onnx"), providers=["CPUExecutionProvider"])
    for batch, length in ((1, 3), (7, 50), (2, 128)):
        feeds = {n: np.ones((batch, length), dtype=np.int64) for n in ("input_ids", "attention_mask", "token_type_ids")}
        assert session.run(["logits"], feeds)[0].shape == (batch, 3)


def fp16_only_copy(out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The export as it ships (FP16 only), with an empty model cache: the engine derives INT8."""
    import shutil

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    for name in ("model.fp16.onnx", "tokenizer.json", "labels.json"):
        shutil.copy(out / name, shipped / name)
    monkeypatch.setenv("SM_LOCAL_CACHE", str(tmp_path / "cache"))
    return shipped


def test_fp16_only_directory_derives_int8_at_load(tiny_export, tmp_path, monkeypatch):

    from stream_app.engine.onnx_classifier import OnnxClassifier

    result, texts = tiny_export
    shipped = fp16_only_copy(result.out, tmp_path, monkeypatch)
    derived = OnnxClassifier(shipped, provider="cpu")
    assert derived.precision == "int8"
    assert list((tmp_path / "cache" / "models").glob("*/model.int8.onnx"))
    reference = OnnxClassifier(result.out, provider="cpu", precision="fp32")
    agree = (derived.probabilities(texts).argmax(1) == reference.probabilities(texts).argmax(1)).mean()
    assert agree >= 0.99


def test_cpu_int8_file_splits_skip_layer_norm_exactly(tiny_export, tmp_path):
    """The CPU rewrite removes every SkipLayerNormalization and changes no FP32 output."""
    import onnx

    from stream_app.engine.precision import split_skip_layer_norm

    result, _ = tiny_export
    int8_ops = {n.op_type for n in onnx.load(str(result.out / "model.int8.onnx")).graph.node}
    assert "SkipLayerNormalization" not in int8_ops and "LayerNormalization" in int8_ops

    fused = onnx.load(str(result.out / "model.fp32.onnx"))
    assert split_skip_layer_norm(fused) == result.fused_ops["SkipLayerNormalization"]
    onnx.save(fused, str(tmp_path / "split.onnx"))
    assert_same_logits(result.out / "model.fp32.onnx", tmp_path / "split.onnx", (4, 20), seed=1)


def assert_same_logits(a: Path, b: Path, shape: tuple[int, int], seed: int) -> None:
    """Two graphs give the same FP32 logits on random token ids of `shape`."""
    import onnxruntime as ort

    rng = np.random.default_rng(seed)
    feeds = {
        "input_ids": rng.integers(5, 40, shape),
        "attention_mask": np.ones(shape, dtype=np.int64),
        "token_type_ids": np.zeros(shape, dtype=np.int64),
    }
    outputs = [
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["logits"], feeds)[0] for path in (a, b)
    ]
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-5)


def test_an_explicit_model_file_is_loaded_as_given(tiny_export):
    """The A/B bench's hook: `model_file` is used instead of the derived file for the precision."""
    from stream_app.engine.onnx_classifier import OnnxClassifier

    result, texts = tiny_export
    explicit = OnnxClassifier(result.out, provider="cpu", precision="int8", model_file=result.out / "model.fp32.onnx")
    fp32 = OnnxClassifier(result.out, provider="cpu", precision="fp32")
    np.testing.assert_allclose(explicit.probabilities(texts[:20]), fp32.probabilities(texts[:20]), atol=1e-6)


def test_outlier_channel_split_is_exact_in_fp32(tiny_export, tmp_path):
    """Derivation 3: each feed-forward projection's largest input channels go to an FP32 side
    product; in FP32 the rewritten graph computes the same logits."""
    import onnx

    from stream_app.engine.precision import OUTLIER_CHANNELS, probe_feeds, split_outlier_channels

    result, _ = tiny_export
    model = onnx.load(str(result.out / "model.fp32.onnx"))
    feeds = probe_feeds(result.out)
    assert feeds is not None and feeds["input_ids"].shape[0] > 1
    keep = split_outlier_channels(model, feeds)
    layers = result.fused_ops["Attention"]
    assert len([n for n in keep if n.endswith("/outlier_matmul")]) >= layers
    index = next(i for i in model.graph.initializer if i.name.endswith("/outlier_index"))
    assert len(onnx.numpy_helper.to_array(index)) == OUTLIER_CHANNELS
    onnx.save(model, str(tmp_path / "split.onnx"))
    assert_same_logits(result.out / "model.fp32.onnx", tmp_path / "split.onnx", (3, 17), seed=2)


def test_int8_file_keeps_outlier_products_and_the_classifier_fp32(tiny_export):
    import onnx

    result, _ = tiny_export
    nodes = onnx.load(str(result.out / "model.int8.onnx")).graph.node
    by_name = {n.name: n.op_type for n in nodes}
    side = [name for name in by_name if name.endswith("/outlier_matmul")]
    assert side and all(by_name[name] == "MatMul" for name in side)
    assert "MatMulInteger" in by_name.values()  # the rest is still INT8
    quantized = {n.name for n in nodes if n.op_type == "MatMulInteger"}
    assert not any(name.startswith(("/classifier/", "/bert/pooler/")) for name in quantized)


def test_the_derivation_version_keys_the_cache(tiny_export, tmp_path, monkeypatch):
    """Files derived by an older rule are not served: the version is part of the cache key."""

    from stream_app.engine import precision

    result, _ = tiny_export
    shipped = fp16_only_copy(result.out, tmp_path, monkeypatch)
    derived = precision.resolve_model_file(shipped, "int8")
    assert derived.parent.name.endswith(f"-v{precision.DERIVATION_VERSION}")
    assert precision.DERIVATION_VERSION >= 3
