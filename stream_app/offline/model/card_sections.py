"""The model card's figure sections, each rendered from the JSON the pipeline writes (training
log and summary, calibration, evaluation, parity): `card.py` holds the prose, this module the
numbers, so no figure is ever typed into the card by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from stream_app.engine.types import DOMAINS
from stream_app.offline.model.data import domain_of_file

NAN = float("nan")

# The project's targets on dev data (issue 22): (file, figure, label, target). The head is the
# file's own domain's (`model.data.DOMAIN_OF_FILE`).
TARGETS: tuple[tuple[str, str, str, float], ...] = (
    ("tweeteval_val", "macro_f1", "macro-F1", 0.71),
    ("tweeteval_val", "negative_recall", "negative recall", 0.66),
    ("airline_tweets_holdout", "macro_f1", "macro-F1", 0.79),
    ("crowdflower_tweets_holdout", "macro_f1", "macro-F1", 0.77),
    ("financial_tweets_train_holdout", "macro_f1", "macro-F1", 0.83),
    ("sst2_dev", "macro_f1", "macro-F1", 0.91),
)


def figure(metrics: dict[str, Any], key: str) -> float:
    return float(metrics["per_class"]["negative"]["recall"] if key == "negative_recall" else metrics[key])


def mean_macro_f1(files: dict[str, Any], domain: str | None = None) -> float:
    """Each file weighs the same (as checkpoint selection and the variant choice do)."""
    scores = [m["macro_f1"] for stem, m in files.items() if domain is None or _domain(stem, m) == domain]
    return float(np.mean(scores)) if scores else NAN


def _domain(stem: str, metrics: dict[str, Any]) -> str:
    """The head that scored a file (evaluations before heads did not say: the file's domain)."""
    return str(metrics.get("domain") or domain_of_file(stem))


def commercial_paragraph(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    best = max(entries, key=lambda e: e["mean"])
    figures = ", ".join(f"{stem} {value:.3f}" for stem, value in best["dev_macro_f1"].items())
    return (
        f" Expected quality, from one dev run of that profile (`{log}`: best of {len(entries)} "
        f"evaluations, step {best['step']} of {best['of']}; raw logits, uncalibrated, hold-outs sampled "
        f"to 600 rows), macro-F1: {figures}. It has no review data, so reviews are not measured."
    )


def training_section(summary: dict[str, Any], previous: str | None, first_pass: dict[str, Any] | None = None) -> str:
    """`first_pass`: the summary of the run whose best checkpoint this run started from (a second
    pass), so the card states the whole chain back to the shipped model's weights."""
    config = summary["config"]
    best = summary["best"]
    base = str(config.get("base", ""))
    warm = summary.get("init_onnx") or Path(base).name == "init"  # `--init-onnx` writes OUT/init
    shipped = f" ({previous})" if previous else ""
    if first_pass is not None:
        fp_config, fp_best = first_pass["config"], first_pass["best"]
        fp_warm = first_pass.get("init_onnx") or Path(str(fp_config.get("base", ""))).name == "init"
        origin = (
            f"itself a warm start from the weights of the shipped model{shipped}, rebuilt as a PyTorch "
            "checkpoint from its FP16 ONNX graph (`stream_app/offline/model/warmstart.py`)"
            + (", each domain head starting as a copy of its single head" if fp_config.get("heads") else "")
            if fp_warm
            else f"itself from `{fp_config.get('base', '?')}`"
        )
        start = (
            f"Second pass. It starts from the best checkpoint of a first pass (`{base}`: seed {fp_config['seed']}, "
            f"{fp_config['epochs']} epoch scheduled, lr {fp_config['learning_rate']}, the classifier's "
            f"{fp_config.get('head_lr_multiplier', 1.0):g}× that; best mean dev macro-F1 {fp_best['score']:.4f} at "
            f"step {fp_best['step']} of {fp_best.get('of', '?')}{_stopped_at(first_pass)}), {origin}. "
        )
    elif warm:
        start = (
            f"Warm start from the weights of the shipped model{shipped}, "
            "rebuilt as a PyTorch checkpoint from its FP16 ONNX graph (`stream_app/offline/model/warmstart.py`; "
            "FP16 rounding is the only loss)"
            + (", each domain head starting as a copy of its single head. " if config.get("heads") else ". ")
        )
    elif base.endswith("all-MiniLM-L6-v2"):
        start = "From the base model. "
    else:
        start = f"From the checkpoint `{base}`. "
    head_lr = config.get("head_lr_multiplier", 1.0)
    weights = summary.get("class_weights")
    weight_text = (
        "; ".join(f"{d}: {[round(w, 3) for w in v]}" for d, v in weights.items())
        if isinstance(weights, dict)
        else str(weights)
    )
    return f"""## Training settings

{start}Seed {config["seed"]}, {config["epochs"]} epoch over {summary["train_examples"]} examples
({summary.get("total_steps", "?")} steps), batch {config["batch_size"]}, AdamW lr {config["learning_rate"]}
(the classifier's {head_lr:g}× that; weight decay 0.01), linear warm-up {config["warmup_fraction"]:.0%} then
linear decay, max length {config["max_length"]} tokens, length-bucketed batches, CPU (one torch thread on a
shared 2-core host). Time cap {config.get("max_minutes")} min. Class weights (negative, neutral, positive),
per domain: {weight_text}. Best checkpoint by mean dev macro-F1 (raw logits, {len(best["dev_macro_f1"])} dev
sets): {best["score"]:.4f} at step {best["step"]} of {best.get("of", "?")}.{_stopped(summary)}
Logs and summaries of the runs are in `docs/training/`; `scripts/train_default.py` reproduces them, then
`sentiment-monitor model export`,
`scripts/calibrate_default` and `scripts/evaluate_default`."""


def _stopped_at(summary: dict[str, Any]) -> str:
    done, total = summary.get("steps_done"), summary.get("total_steps")
    return f"; stopped by its time cap at step {done}" if done is not None and total and done < total else ""


def _stopped(summary: dict[str, Any]) -> str:
    done, total = summary.get("steps_done"), summary.get("total_steps")
    if done is None or total is None or done >= total:
        return ""
    return f" The time cap stopped the run at step {done}, before its learning-rate schedule ended."


def variants_section(variants: dict[str, Path], meta: dict[str, Any], chosen: str | None = None) -> str:
    """The recipes this model was chosen among, on the same dev sets (calibrated, INT8). `chosen`
    names this model's column; without it, the variants whose heads or prefix match this model's."""
    if not variants:
        return ""
    evals = {name: json.loads(path.read_text()) for name, path in variants.items()}
    stems = list(dict.fromkeys(stem for e in evals.values() for stem in e["files"]))
    header = " | ".join(f"{name}" for name in evals)
    rows = [
        f"| `{stem}` | "
        + " | ".join(f"{e['files'][stem]['macro_f1']:.4f}" if stem in e["files"] else "" for e in evals.values())
        + " |"
        for stem in stems
    ]
    for key, label in (("negative_recall", "TweetEval negative recall"),):
        rows.append(
            f"| {label} | "
            + " | ".join(
                f"{figure(e['files']['tweeteval_val'], key):.4f}" if "tweeteval_val" in e["files"] else ""
                for e in evals.values()
            )
            + " |"
        )
    means = {name: mean_macro_f1(e["files"]) for name, e in evals.items()}
    rows.append("| **mean macro-F1 (each set alike)** | " + " | ".join(f"**{m:.4f}**" for m in means.values()) + " |")
    matching = (
        [chosen]
        if chosen in evals
        else [
            name
            for name, e in evals.items()
            if list(e.get("heads") or []) == list(meta.get("heads") or [])
            and bool(e.get("domain_prefix")) == bool(meta.get("domain_prefix"))
        ]
    )
    best = max(means, key=lambda n: means[n])
    return f"""## Variants compared

Two recipes were trained from the same warm start, on the same mix, for the same time: domain
heads (one shared encoder, a head per domain) and a domain token (one head, the domain as a
leading word); a column named as a second pass continued one of them from its best checkpoint
(see Training settings). Dev macro-F1 of each, calibrated per domain and INT8 on CPU (`model evaluate`,
each file scored by its own domain): the rule is the higher mean over the dev sets, each set
weighing the same. Highest: **{best}**; this model is {", ".join(f"**{c}**" for c in matching) or "neither"}.

| dev set | {header} |
|---|{"---:|" * len(evals)}
{chr(10).join(rows)}"""


def _heads_of(model: Path) -> dict[str, dict[str, Any]] | None:
    path = model / "calibration.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    heads: dict[str, dict[str, Any]] = data.get("heads", {"all domains": data})
    return heads


def calibration_section(model: Path) -> str:
    heads = _heads_of(model)
    if heads is None:
        return "## Calibration\n\nNone: `calibration.json` is absent, so raw softmax and argmax are served."
    params = "\n".join(
        f"| `{name}` | {c['temperature']} | {c['bias']} | {c['offsets']} | {c.get('label_floor', 0.0)} "
        f"| {', '.join(c.get('report', {}).get('fitted_on', [])) or 'none'} |"
        for name, c in heads.items()
    )
    per_set = "\n".join(
        f"| `{name}` | `{stem}` | {row['raw']['macro_f1']:.4f} | {row['calibrated']['macro_f1']:.4f} "
        f"| {row['raw']['negative_recall']:.4f} | {row['calibrated']['negative_recall']:.4f} "
        f"| {row['raw'].get('ece_p_negative', NAN):.4f} | {row['calibrated'].get('ece_p_negative', NAN):.4f} |"
        for name, c in heads.items()
        for stem, row in c.get("report", {}).get("per_set", {}).items()
    )
    ece = "; ".join(
        f"`{name}` {c['report']['p_negative_ece_pooled']['raw']:.4f} raw, "
        f"{c['report']['p_negative_ece_pooled']['calibrated']:.4f} calibrated"
        for name, c in heads.items()
        if "p_negative_ece_pooled" in c.get("report", {})
    )
    first = next(iter(heads))
    bins = "\n".join(
        f"| {b['bin']} | {b['n']} | {b['mean_p_negative']:.3f} | {b['observed_negative']:.3f} |"
        for b in heads[first].get("report", {}).get("p_negative_reliability_pooled", [])
    )
    return f"""## Calibration (`calibration.json`, applied by the engine at load)

Fitted on the dev sets only (`sentiment-monitor model calibrate`), each head on its own domain's
sets: temperature and bias by log-loss on the pooled three-class dev rows, so probabilities mean
what they say; decision offsets by mean macro-F1 over the head's dev sets, so `negative` is not
swallowed by `neutral`. A head whose dev sets are all binary (reviews: no neutral rows) gets a
temperature by negative-vs-positive log-loss, no bias, and one polarity offset with opposite signs
(`-d, 0, +d`), which leaves neutral's level as the model has it. Offsets move labels, not
probabilities: `score --json`, `model evaluate` and the worker all apply both.
`label_floor` is the share of the head's non-negative dev posts it labels negative (the mean over
its three-class sets; over its binary sets' positive rows for reviews): the spike detector allows
for it per domain (`docs/alerting.md`).

| head | temperature | bias (neg, neu, pos) | offsets | label_floor | fitted on |
|---|---:|---|---|---:|---|
{params}

| head | dev set | macro-F1 raw | calibrated | neg. recall raw | calibrated | ECE p_neg raw | calibrated |
|---|---|---:|---:|---:|---:|---:|---:|
{per_set}

**How far to trust `p_negative`.** Expected calibration error of `p_negative`, pooled over each
head's dev rows: {ece or "not computed"}. Reliability of the `{first}` head (10 bins, calibrated):

| p_negative bin | n | mean p_negative | observed negative share |
|---|---:|---:|---:|
{bins}"""


def evaluation_section(evaluation: dict[str, Any], before: tuple[str, dict[str, Any]] | None) -> str:
    prev_name, prev = before if before else ("previous", {})
    extra = f" {prev_name} macro-F1 |" if before else ""
    rows = "\n".join(
        f"| `{stem}` | `{_domain(stem, m)}` | {m['n']} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} "
        f"| {figure(m, 'negative_recall'):.4f} | {'binary' if m['binary'] else '3-class'} |"
        + (f" {prev[stem]['macro_f1']:.4f} |" if before and stem in prev else (" |" if before else ""))
        for stem, m in evaluation.items()
    )
    if not rows:
        return (
            "## Evaluation\n\nNot evaluated yet: `model evaluate --json`, "
            "then `python -m stream_app.offline.model.card`."
        )
    means = [f"`{d}` {mean_macro_f1(evaluation, d):.4f}" for d in DOMAINS if not np.isnan(mean_macro_f1(evaluation, d))]
    prev_mean = f" ({prev_name}: {mean_macro_f1(prev):.4f})" if before else ""
    return f"""## Evaluation (INT8 on CPU, the service's path, each head's calibration applied)

Each file is scored by its own domain's head. Decision rule: the calibrated decision (argmax of
log-probabilities plus the head's decision offsets); on binary files, positive vs negative by the
same rule (neutral ignored).

| data | head | n | accuracy | macro-F1 | negative recall | kind |{extra}
|---|---|---:|---:|---:|---:|---|{"---:|" if before else ""}
{rows}

Mean macro-F1 per head: {", ".join(means)}; over all sets, each weighing the same:
{mean_macro_f1(evaluation):.4f}{prev_mean}. The `*_holdout` rows are this project's stable hash
hold-outs of the training files; `tweeteval_val` and `sst2_dev` were never trained on (they chose
the checkpoint and fitted the calibration, so they are dev figures, not test figures)."""


def parity_section(parity: dict[str, Any]) -> str:
    per_head = parity.get("per_head") or {}
    rows = "\n".join(
        f"| `{name}` | {h['fp32_max_abs_logit_diff']:.2e} | {h['int8_argmax_agreement']:.4f} "
        f"| {h['fp16_argmax_agreement']:.4f} |"
        for name, h in per_head.items()
    )
    overall = (
        f"| all | {parity['fp32_max_abs_logit_diff']:.2e} | {parity['int8_argmax_agreement']:.4f} "
        f"| {parity['fp16_argmax_agreement']:.4f} |"
    )
    return f"""## Export parity ({parity["n_texts"]} synthetic tweet-length texts{", per head" if per_head else ""})

FP32 ONNX against PyTorch (max abs logit difference, target ≤ 1e-4); INT8 and FP16 argmax
agreement with FP32 (target ≥ 0.99; "all" is the worst head). FP16 was evaluated on:
{parity["fp16_evaluated_on"]}. {"Passed." if parity.get("passed") else "**Not passed** (see the figures)."}

| head | FP32 vs PyTorch | INT8 vs FP32 | FP16 vs FP32 |
|---|---:|---:|---:|
{rows + chr(10) if rows else ""}{overall}"""


def targets_section(evaluation: dict[str, Any], before: tuple[str, dict[str, Any]] | None) -> str:
    rows = ["| data | figure | target | measured | met |", "|---|---|---:|---:|---|"]
    for stem, key, label, target in TARGETS:
        if stem in evaluation:
            value = figure(evaluation[stem], key)
            rows.append(f"| `{stem}` | {label} | ≥ {target:.2f} | {value:.4f} | {'yes' if value >= target else 'no'} |")
    if before and "tweeteval_val" in evaluation and "tweeteval_val" in before[1]:
        for key, label in (("macro_f1", "macro-F1"), ("negative_recall", "negative recall")):
            old, new = figure(before[1]["tweeteval_val"], key), figure(evaluation["tweeteval_val"], key)
            met = "yes" if new >= old else "no"
            rows.append(f"| `tweeteval_val` | {label} not below {before[0]} | ≥ {old:.4f} | {new:.4f} | {met} |")
    table = "\n".join(rows) if len(rows) > 2 else "Not evaluated yet."
    return f"## Against the project's targets (dev data)\n\n{table}"
