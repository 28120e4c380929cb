"""Model v3 in the engine, on hand-built ONNX graphs (no torch): each text is scored by its
domain's head, or read behind its domain's prefix, and calibrated by its head's calibration;
one-head models ignore domains; the domain list travels with a job through the runner.

The graphs answer from one token: the one after [CLS] indexes a table of logits. A heads graph's
table gives every token the same `[heads, 3]` block (social -> negative, finance -> neutral,
reviews -> positive), so only the head decides; a prefix graph's table knows the three domain
words, so only the prefix decides.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from stream_app.engine.calibration import CALIBRATION_FILE, Calibration, DomainCalibrations, softmax
from stream_app.engine.null import NullClassifier
from stream_app.engine.onnx_classifier import OnnxClassifier, head_index
from stream_app.engine.runner import InferenceRunner
from stream_app.engine.tokenize import BucketingTokenizer
from stream_app.engine.types import DOMAINS, resolve_domains, with_domain_prefix
from stream_app.settings import DEFAULT_MODEL_DIR

# social -> negative, finance -> neutral, reviews -> positive
BLOCK = np.array([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]], dtype=np.float32)
EXPECTED = {"social": "negative", "finance": "neutral", "reviews": "positive"}


def _graph(table: np.ndarray, heads: int, path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in ("input_ids",)]
    shape = ["batch", heads, 3] if heads > 1 else ["batch", 3]
    nodes = [
        helper.make_node("Gather", ["input_ids", "one"], ["first"], axis=1),
        helper.make_node("Gather", ["table", "first"], ["rows"], axis=0),
        helper.make_node("Reshape", ["rows", "shape"], ["logits"]),
    ]
    initializers = [
        numpy_helper.from_array(np.array(1, dtype=np.int64), "one"),
        numpy_helper.from_array(table.astype(np.float32), "table"),
        numpy_helper.from_array(np.array([-1, *shape[1:]], dtype=np.int64), "shape"),
    ]
    output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, shape)
    graph = helper.make_graph(nodes, "fake", inputs, [output], initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _model_dir(root: Path, kind: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(DEFAULT_MODEL_DIR / "tokenizer.json", root / "tokenizer.json")
    tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
    vocab = tokenizer.get_vocab_size()
    meta: dict[str, object] = {"labels": ["negative", "neutral", "positive"], "name": kind, "version": "3.0.0"}
    if kind == "heads":
        _graph(np.tile(BLOCK.reshape(1, -1), (vocab, 1)), len(DOMAINS), root / "model.fp32.onnx")
        meta["heads"] = list(DOMAINS)
    else:
        table = np.zeros((vocab, 3), dtype=np.float32)
        table[:, 1] = 1.0  # any other first token: neutral
        for domain in DOMAINS:
            table[tokenizer.token_to_id(domain)] = BLOCK[DOMAINS.index(domain)]
        _graph(table, 1, root / "model.fp32.onnx")
        meta["domain_prefix"] = kind == "prefix"
    (root / "labels.json").write_text(json.dumps(meta))
    return root


@pytest.fixture
def heads_dir(tmp_path: Path) -> Path:
    return _model_dir(tmp_path / "heads", "heads")


def _engine(model_dir: Path) -> OnnxClassifier:
    return OnnxClassifier(model_dir, provider="cpu", precision="fp32", intra_op_threads=1)


def test_each_text_is_scored_by_its_own_domains_head(heads_dir):
    engine = _engine(heads_dir)
    domains = ["reviews", "social", "finance", "finance", "reviews"]
    texts = ["same words", "same words", "same words", "x " * 400, ""]  # a long text's windows keep the head
    assert [r.label for r in engine.classify(texts, domains)] == [EXPECTED[d] for d in domains]
    assert {r.label for r in engine.classify(texts)} == {"negative"}  # default: the social head
    assert engine.heads == DOMAINS


def test_staged_and_chunked_scoring_keeps_each_rows_head(tmp_path):
    engine = OnnxClassifier(_model_dir(tmp_path, "heads"), provider="cpu", precision="fp32", long_text="chunks")
    domains = [DOMAINS[i % 3] for i in range(40)]
    texts = [("word " * (i * 13)).strip() for i in range(40)]  # lengths spread over buckets and chunks
    staged = engine.postprocess(len(texts), engine.forward(engine.tokenize(texts, domains)))
    assert [r.label for r in staged] == [EXPECTED[d] for d in domains]


def test_a_domain_prefix_model_reads_the_domain_as_a_leading_word(tmp_path):
    engine = _engine(_model_dir(tmp_path / "prefix", "prefix"))
    assert [r.label for r in engine.classify(["same words"] * 3, list(DOMAINS))] == [EXPECTED[d] for d in DOMAINS]
    unprefixed = _engine(_model_dir(tmp_path / "plain", "plain"))  # the same graph, no prefix in labels.json
    assert {r.label for r in unprefixed.classify(["same words"] * 3, list(DOMAINS))} == {"neutral"}


def test_the_prefix_opens_every_window_and_matches_the_joint_encoding():
    tokenizer = BucketingTokenizer.from_dir(DEFAULT_MODEL_DIR, max_length=32, long_text="chunks", domain_prefix=True)
    (piece,) = tokenizer.encode(["a short post"], ["finance"])
    joint = tokenizer._tokenizer.encode(with_domain_prefix("finance", "a short post")).ids
    assert piece.input_ids[0, : len(joint)].tolist() == joint
    prefix = tokenizer._tokenizer.encode("finance:", add_special_tokens=False).ids
    long_ids = tokenizer._tokenizer.encode(" ".join(f"word{i}" for i in range(300))).ids
    windows = tokenizer.windows(long_ids, prefix)
    assert len(windows) > 1
    for window in windows:
        assert len(window) == 32 and window[1 : 1 + len(prefix)] == prefix


def test_per_head_calibration_applies_to_each_row(heads_dir):
    logits = _engine(heads_dir).logits(["a", "b", "c"], list(DOMAINS))
    DomainCalibrations(
        {
            "social": Calibration(temperature=2.0),
            "finance": Calibration(temperature=0.5, label_floor=0.05),
            "reviews": Calibration(offsets=(9.0, 0.0, 0.0), label_floor=0.02),
        }
    ).save(heads_dir)
    engine = _engine(heads_dir)
    probs = engine.probabilities(["a", "b", "c"], list(DOMAINS))
    assert probs[0] == pytest.approx(softmax(logits[:1] / 2.0)[0], abs=1e-6)
    assert probs[1] == pytest.approx(softmax(logits[1:2] / 0.5)[0], abs=1e-6)
    labels = [r.label for r in engine.classify(["a", "b", "c"], list(DOMAINS))]
    assert labels == ["negative", "neutral", "negative"]  # the reviews head's offset moved only its row
    assert engine.label_floors() == {"social": 0.0, "finance": 0.05, "reviews": 0.02}


def test_per_head_calibration_round_trips_and_the_flat_file_still_loads(tmp_path):
    saved = DomainCalibrations(
        {
            d: Calibration(temperature=1.0 + i, bias=(0.1 * i, 0.0, 0.0), label_floor=0.1 * i)
            for i, d in enumerate(DOMAINS)
        }
    )
    saved.save(tmp_path)
    assert set(json.loads((tmp_path / CALIBRATION_FILE).read_text())["heads"]) == set(DOMAINS)
    assert DomainCalibrations.load(tmp_path) == saved
    assert Calibration.load(tmp_path) == saved["social"]  # what one-floor callers keep reading

    flat = Calibration(temperature=1.25, bias=(-0.55, 0.0, -0.35), offsets=(0.15, 0.0, 0.0), label_floor=0.13)
    flat.save(tmp_path)  # today's (v2) format
    loaded = DomainCalibrations.load(tmp_path)
    assert not loaded.per_head and all(loaded[d] == flat for d in DOMAINS)
    assert loaded.label_floors() == dict.fromkeys(DOMAINS, 0.13)
    loaded.save(tmp_path)  # a flat calibration is saved flat again
    assert "heads" not in json.loads((tmp_path / CALIBRATION_FILE).read_text())


def test_a_one_head_model_ignores_domains(model_dir):
    """The shipped v2 model (one head, flat calibration) scores every domain alike."""
    engine = OnnxClassifier(model_dir, provider="cpu", intra_op_threads=1)
    texts = ["I love it", "worst flight ever", "$AAPL closes flat", "the plot was dull"]
    plain = engine.probabilities(texts)
    for domain in DOMAINS:
        assert np.allclose(engine.probabilities(texts, [domain] * len(texts)), plain)
    assert len(set(engine.label_floors().values())) == 1


async def test_the_runner_carries_domains_and_rejects_a_bad_list(heads_dir):
    runner = InferenceRunner(_engine(heads_dir), queue_depth=1)
    await runner.start()
    try:
        domains = ["finance", "reviews", "social", "reviews"]
        results, info = await runner.classify_versioned(["w"] * 4, domains)
        assert [r.label for r in results] == [EXPECTED[d] for d in domains] and info.name == "heads"
        assert [r.label for r in await runner.classify_batch(["w"], ["finance"])] == ["neutral"]
        with pytest.raises(ValueError, match="2 domains for 1 texts"):
            await runner.classify_versioned(["w"], ["social", "social"])
        with pytest.raises(ValueError, match="unknown domains"):
            await runner.classify_batch(["w"], ["sports"])
    finally:
        await runner.stop()


def test_the_null_classifier_accepts_domains_and_checks_them():
    null = NullClassifier()
    assert len(null.classify(["a", "bb"], ["finance", "reviews"])) == 2
    assert null.label_floors() == dict.fromkeys(DOMAINS, 0.0)
    with pytest.raises(ValueError):
        null.classify(["a"], ["finance", "social"])


def test_domains_resolve_and_missing_heads_fall_back_to_social():
    assert resolve_domains(2, None) == ["social", "social"]
    assert head_index(("social", "finance")).tolist() == [0, 1, 0]  # no reviews head: social's
    assert head_index(()).tolist() == [0, 0, 0]
    with pytest.raises(ValueError):
        head_index(("social", "sports"))


def test_labels_json_must_agree_with_the_graph(heads_dir):
    meta = json.loads((heads_dir / "labels.json").read_text())
    del meta["heads"]
    (heads_dir / "labels.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="rank 3"):
        _engine(heads_dir)
