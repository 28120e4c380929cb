"""Long-text windows and calibration: the engine reads long reviews by strategy, and applies
`calibration.json` at load so every caller sees the same probabilities and labels."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from stream_app.engine.calibration import Calibration, softmax
from stream_app.engine.onnx_classifier import OnnxClassifier
from stream_app.engine.tokenize import MAX_CHUNKS, BucketingTokenizer, EncodedSlice, merge_windows
from stream_app.offline.model.calibrate import DevSet, expected_calibration_error, fit

LONG = " ".join(f"word{i}" for i in range(400))


@pytest.fixture(scope="module", params=["head", "head_tail", "chunks"])
def tokenizer(request, model_dir) -> BucketingTokenizer:
    return BucketingTokenizer.from_dir(model_dir, max_length=32, long_text=request.param)


def test_short_texts_are_one_untouched_window(tokenizer):
    ids = tokenizer._tokenizer.encode("a short review").ids
    assert tokenizer.windows(ids) == [ids]


def test_long_texts_fit_the_model_and_keep_cls_and_sep(tokenizer):
    ids = tokenizer._tokenizer.encode(LONG).ids
    windows = tokenizer.windows(ids)
    assert 1 <= len(windows) <= MAX_CHUNKS
    for window in windows:
        assert len(window) == 32
        assert window[0] == ids[0] and window[-1] == ids[-1]


def test_head_tail_keeps_the_start_and_the_closing_verdict(model_dir):
    tok = BucketingTokenizer.from_dir(model_dir, max_length=32, long_text="head_tail")
    ids = tok._tokenizer.encode(LONG).ids
    (window,) = tok.windows(ids)
    body = ids[1:-1]
    assert window[1:8] == body[:7]  # a quarter of the 30-token budget from the head
    assert window[8:-1] == body[-23:]  # the rest from the tail


def test_chunks_cover_head_and_tail_and_share_one_position(model_dir):
    tok = BucketingTokenizer.from_dir(model_dir, max_length=32, long_text="chunks")
    ids = tok._tokenizer.encode(LONG).ids
    windows = tok.windows(ids)
    assert len(windows) == MAX_CHUNKS
    assert windows[0][1:-1] == ids[1:31] and windows[-1][1:-1] == ids[-31:-1]
    slices = tok.encode(["short", LONG])
    positions = np.concatenate([s.positions for s in slices]).tolist()
    assert sorted(positions) == [0] + [1] * MAX_CHUNKS


def test_merge_windows_weights_by_tokens_and_is_identity_for_one_window():
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]])
    no_domain = np.zeros(3, dtype=np.int64)
    piece = EncodedSlice(np.array([0, 0, 1]), np.zeros_like(mask), mask, np.zeros_like(mask), no_domain)
    values = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8]], dtype=np.float32)
    merged = merge_windows(2, [(piece, values)])
    assert merged[0] == pytest.approx([(0.9 * 4 + 0.3 * 2) / 6, (0.1 * 4 + 0.7 * 2) / 6])
    assert merged[1] == pytest.approx([0.2, 0.8])


def test_every_strategy_scores_a_long_review_through_the_engine(model_dir):
    review = "The delivery was quick and the box was nice. " * 30 + "But it broke after a day, awful, do not buy."
    for strategy in ("head", "head_tail", "chunks"):
        (result,) = OnnxClassifier(model_dir, provider="cpu", long_text=strategy).classify([review])
        assert abs(sum(result.probabilities.values()) - 1) < 1e-4


def test_a_model_without_calibration_json_gets_the_identity(tmp_path):
    assert Calibration.load(tmp_path).is_identity


def test_calibration_round_trips(tmp_path):
    saved = Calibration(
        temperature=1.7, bias=(0.2, 0.0, -0.1), offsets=(0.4, 0.0, 0.05), label_floor=0.12, report={"x": 1}
    )
    saved.save(tmp_path)
    assert Calibration.load(tmp_path) == saved


@pytest.fixture
def calibrated_copy(model_dir, tmp_path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("calibration.json"))
    return copy


def test_calibration_is_applied_at_load(model_dir, calibrated_copy):
    texts = ["I love it", "meh, it is a phone", "worst service ever"]
    raw = OnnxClassifier(calibrated_copy, provider="cpu")
    logits = raw.logits(texts)
    Calibration(temperature=2.0, bias=(0.0, 0.0, 0.0), offsets=(5.0, 0.0, 0.0)).save(calibrated_copy)
    loaded = OnnxClassifier(calibrated_copy, provider="cpu")
    expected = softmax(logits / 2.0)
    assert loaded.probabilities(texts) == pytest.approx(expected, abs=1e-5)
    results = loaded.classify(texts)
    assert [r.probabilities["negative"] for r in results] == pytest.approx(expected[:, 0].tolist(), abs=1e-5)
    assert {r.label for r in results} == {"negative"}  # a huge negative offset moves every decision


def test_fit_recovers_a_known_temperature_and_balances_decisions():
    rng = np.random.default_rng(3)
    gold = rng.choice(3, size=6000, p=[0.15, 0.55, 0.30])
    true_logits = rng.normal(0, 1, (6000, 3)).astype(np.float32)
    true_logits[np.arange(6000), gold] += 2.0
    overconfident = true_logits * 2.5
    # sample labels from the true probabilities so the optimum temperature is 2.5
    probs = softmax(true_logits)
    sampled = np.array([rng.choice(3, p=p / p.sum()) for p in probs.astype(np.float64)])
    calibration = fit({"dev": DevSet(overconfident, sampled, binary=False)})
    assert calibration.temperature == pytest.approx(2.5, abs=0.25)
    raw_ece = expected_calibration_error(softmax(overconfident)[:, 0], sampled == 0)
    fitted_ece = expected_calibration_error(calibration.probabilities(overconfident)[:, 0], sampled == 0)
    assert fitted_ece < raw_ece
    assert (
        calibration.report["per_set"]["dev"]["calibrated"]["macro_f1"]
        >= (calibration.report["per_set"]["dev"]["raw"]["macro_f1"])
    )


def test_label_floor_is_the_mean_false_negative_rate_over_three_class_sets():
    """Each 3-class dev set weighs the same; binary sets (no neutral) say nothing about it."""
    from stream_app.offline.model.calibrate import label_floor

    confident = np.float32(8.0)

    def logits_for(labels: list[int]) -> np.ndarray:
        out = np.zeros((len(labels), 3), dtype=np.float32)
        out[np.arange(len(labels)), labels] = confident
        return out

    # set a: 1 of 4 non-negative posts called negative; set b: 0 of 2; binary set c ignored
    a = DevSet(logits_for([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 2]), binary=False)
    b = DevSet(logits_for([0, 1, 2]), np.array([0, 1, 2]), binary=False)
    c = DevSet(logits_for([0, 0]), np.array([2, 2]), binary=True)
    assert label_floor({"a": a, "b": b, "c": c}, Calibration()) == pytest.approx((0.25 + 0.0) / 2)


def test_a_binary_only_head_fits_temperature_and_one_polarity_shift():
    """Reviews have no neutral rows: temperature by negative-vs-positive log-loss, no bias, and
    offsets (-d, 0, +d), so neutral's level is left as the model has it."""
    from stream_app.offline.model.calibrate import fit_binary

    rng = np.random.default_rng(5)
    n = 4000
    gold = np.where(rng.random(n) < 0.5, 0, 2)
    margin = rng.normal(0, 1.5, n) + np.where(gold == 2, 1.0, -1.0)  # true log-odds of positive
    sampled = np.where(rng.random(n) < 1 / (1 + np.exp(-margin)), 2, 0)
    logits = np.zeros((n, 3), dtype=np.float32)
    logits[:, 2] = 2.5 * margin / 2  # overconfident by 2.5 in the pos - neg difference
    logits[:, 0] = -2.5 * margin / 2
    calibration = fit_binary({"sst2_dev": DevSet(logits, sampled, binary=True)})
    assert calibration.temperature == pytest.approx(2.5, abs=0.2)
    assert calibration.bias == (0.0, 0.0, 0.0)
    assert calibration.offsets[0] == -calibration.offsets[2] and calibration.offsets[1] == 0.0
    # its label floor: the positive rows the 3-way decision calls negative
    labels = calibration.decide(calibration.probabilities(logits))
    assert calibration.label_floor == pytest.approx(round(float((labels[sampled == 2] == 0).mean()), 4))
    assert calibration.report["binary_only"] is True
