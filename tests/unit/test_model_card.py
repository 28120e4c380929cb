"""The model card is rendered from files only: per-head calibration, parity and evaluation,
the previous model's figures and the variants compared all come from JSON the pipeline wrote."""

from __future__ import annotations

import json
from pathlib import Path

from stream_app.engine.calibration import Calibration, DomainCalibrations
from stream_app.engine.types import DOMAINS
from stream_app.offline.model.card import write_card


def _metrics(macro_f1: float, neg_recall: float, domain: str, binary: bool = False) -> dict[str, object]:
    return {
        "n": 100,
        "accuracy": macro_f1,
        "macro_f1": macro_f1,
        "per_class": {"negative": {"recall": neg_recall}},
        "binary": binary,
        "domain": domain,
    }


def _eval(path: Path, tweets: float, finance: float, sst2: float, heads: list[str], prefix: bool = False) -> Path:
    files = {
        "tweeteval_val": _metrics(tweets, 0.6611, "social"),
        "financial_tweets_train_holdout": _metrics(finance, 0.7, "finance"),
        "sst2_dev": _metrics(sst2, 0.9, "reviews", binary=True),
    }
    path.write_text(json.dumps({"files": files, "heads": heads, "domain_prefix": prefix}))
    return path


def _model(root: Path) -> Path:
    model = root / "model"
    model.mkdir()
    (model / "labels.json").write_text(
        json.dumps(
            {"labels": ["negative", "neutral", "positive"], "name": "m", "version": "3.0.0", "heads": list(DOMAINS)}
        )
    )
    per_head = {
        d: {"fp32_max_abs_logit_diff": 1e-6, "int8_argmax_agreement": a, "fp16_argmax_agreement": 1.0}
        for d, a in zip(DOMAINS, (0.9931, 0.9942, 0.9953), strict=True)
    }
    parity = {"n_texts": 300, "fp32_max_abs_logit_diff": 1e-6, "int8_argmax_agreement": 0.9931}
    parity |= {"fp16_argmax_agreement": 1.0, "fp16_evaluated_on": "CPU", "per_head": per_head, "passed": True}
    (model / "parity.json").write_text(json.dumps(parity))
    DomainCalibrations(
        {
            d: Calibration(temperature=t, label_floor=f)
            for d, t, f in zip(DOMAINS, (1.15, 1.35, 1.55), (0.111, 0.066, 0.033), strict=True)
        }
    ).save(model)
    config = {
        "data": ["/d/semeval_tweets_2013_2016.csv", "/d/financial_tweets_train.csv", "/d/sst2_train.csv"],
        "dev_files": ["/d/tweeteval_val.csv", "/d/sst2_dev.csv"],
        "base": "build/v3-heads/init",
        "seed": 41,
        "epochs": 0.8,
        "batch_size": 32,
        "learning_rate": 4e-5,
        "head_lr_multiplier": 10.0,
        "warmup_fraction": 0.04,
        "max_length": 96,
        "holdout_fraction": 0.1,
        "per_file_weight": {"financial_tweets_train": 2.5},
        "heads": list(DOMAINS),
    }
    best = {"score": 0.7777, "step": 1720, "of": 2152, "dev_macro_f1": {"tweeteval_val": 0.7}}
    summary = {"best": best, "total_steps": 2152, "steps_done": 1745, "train_examples": 68000, "config": config}
    (model / "train_summary.json").write_text(json.dumps(summary))
    return model


def test_the_card_reads_every_figure_from_files(tmp_path):
    model = _model(tmp_path)
    evaluation = _eval(tmp_path / "eval.json", 0.7211, 0.8411, 0.9111, list(DOMAINS))
    previous = _eval(tmp_path / "prev.json", 0.7085, 0.7856, 0.8760, [])
    variants = {
        "heads": evaluation,
        "tokens": _eval(tmp_path / "tokens.json", 0.7011, 0.8311, 0.9011, [], prefix=True),
    }
    card = write_card(model, evaluation, ("v2.1.0", previous), variants).read_text()
    for figure in ("0.7211", "0.8411", "0.9111", "0.7085", "0.7856", "0.7011", "0.8311"):
        assert figure in card  # this model's, the previous model's and the other variant's
    for figure in ("0.9931", "0.9942", "0.9953", "1.15", "1.35", "1.55", "0.111", "0.066", "0.033"):
        assert figure in card  # per-head parity and calibration
    assert "Warm start from the weights of the shipped model (v2.1.0)" in card
    assert "The time cap stopped the run at step 1745" in card
    assert "Highest: **heads**; this model is **heads**" in card
    assert "| `tweeteval_val` | macro-F1 not below v2.1.0 | ≥ 0.7085 | 0.7211 | yes |" in card
    assert "| `financial_tweets_train.csv` | MIT | all | 2.5× | `finance` |" in card
    assert "0.689" not in card and "0.770 -> 0.786" not in card  # no figure typed into the writer


def test_the_commercial_figures_come_from_its_log(tmp_path):
    model = _model(tmp_path)
    log = tmp_path / "commercial.jsonl"
    log.write_text(
        json.dumps({"step": 5, "of": 9, "mean": 0.61, "dev_macro_f1": {"tweeteval_val": 0.6123}})
        + "\n"
        + json.dumps({"step": 9, "of": 9, "mean": 0.64, "dev_macro_f1": {"tweeteval_val": 0.6456}})
        + "\n"
    )
    card = write_card(model, commercial_log=log).read_text()
    assert "tweeteval_val 0.646" in card and "best of 2 evaluations, step 9 of 9" in card
    assert "Not evaluated yet" in card


def test_a_second_pass_states_its_chain_and_its_column(tmp_path):
    """A second pass names the first pass it started from (and that one's warm start), and
    `chosen` picks its column when two variants share the heads layout."""
    model = _model(tmp_path)
    summary = json.loads((model / "train_summary.json").read_text())
    first = tmp_path / "first_summary.json"
    first.write_text(json.dumps(summary))
    summary["config"] |= {"base": "build/v3-heads/checkpoint", "seed": 43}
    summary["best"] = {"score": 0.7955, "step": 1057, "of": 1089, "dev_macro_f1": {"tweeteval_val": 0.7}}
    summary |= {"total_steps": 1089, "steps_done": 1057}
    (model / "train_summary.json").write_text(json.dumps(summary))
    evaluation = _eval(tmp_path / "eval.json", 0.7020, 0.8175, 0.8979, list(DOMAINS))
    variants = {
        "heads": _eval(tmp_path / "h1.json", 0.7006, 0.8091, 0.8922, list(DOMAINS)),
        "tokens": _eval(tmp_path / "tokens.json", 0.7043, 0.8220, 0.8899, [], prefix=True),
        "heads, second pass": evaluation,
    }
    card = write_card(model, evaluation, None, variants, first_pass=first, chosen="heads, second pass").read_text()
    assert "Second pass. It starts from the best checkpoint of a first pass (`build/v3-heads/checkpoint`" in card
    assert "best mean dev macro-F1 0.7777 at step 1720 of 2152; stopped by its time cap at step 1745" in card
    assert "itself a warm start from the weights of the shipped model" in card
    assert "this model is **heads, second pass**" in card
    assert "The time cap stopped the run at step 1057" in card
