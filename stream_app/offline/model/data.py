"""Labelled CSV loading shared by training and evaluation.

Kept free of torch so that `model evaluate` runs on a service install.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from stream_app.engine.tokenize import clean_text
from stream_app.engine.types import DEFAULT_DOMAIN, LABELS

LABEL_TO_ID = {name: i for i, name in enumerate(LABELS)}
# Which domain (and so which head) each labelled file belongs to, by file stem; every other file
# is `social` (general and brand posts). One table for training, calibration and evaluation, so a
# file's rows are trained, calibrated and scored by the same head.
DOMAIN_OF_FILE: dict[str, str] = {
    "financial_tweets_train": "finance",
    "sst2_train": "reviews",
    "sst2_dev": "reviews",
    "movie_review_sentences": "reviews",
    "product_review_sentences": "reviews",
}
HOLDOUT_SUFFIX = "_holdout"  # `model split` names a file's hold-out STEM_holdout.csv


def domain_of_file(path: Path | str) -> str:
    """The domain of a labelled file, by its stem; a hold-out (`STEM_holdout.csv`) is its file's."""
    stem = Path(path).stem if isinstance(path, Path) or str(path).endswith(".csv") else str(path)
    return DOMAIN_OF_FILE.get(stem.removesuffix(HOLDOUT_SUFFIX), DEFAULT_DOMAIN)


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    label: int
    binary: bool
    source: str


def read_labelled_csv(path: Path) -> tuple[list[Example], bool]:
    """Read a `text,label` CSV; the file is binary when it has no neutral rows."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [(r["text"], r["label"].strip().lower()) for r in csv.DictReader(handle)]
    unknown = {label for _, label in rows if label not in LABEL_TO_ID}
    if unknown:
        raise ValueError(f"{path}: unknown labels {sorted(unknown)}; expected {LABELS}")
    binary = all(label != "neutral" for _, label in rows)
    examples = [Example(clean_text(text), LABEL_TO_ID[label], binary, path.stem) for text, label in rows]
    return examples, binary


def in_holdout(text: str, fraction: float, salt: str = "sentiment-monitor") -> bool:
    """Stable hash split: the same text is always on the same side, on every machine."""
    digest = hashlib.blake2b(f"{salt}:{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


def split_holdout(examples: Iterable[Example], fraction: float) -> tuple[list[Example], list[Example]]:
    train: list[Example] = []
    dev: list[Example] = []
    for example in examples:
        (dev if in_holdout(example.text, fraction) else train).append(example)
    return train, dev


def write_labelled_csv(path: Path, examples: Sequence[Example]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for example in examples:
            writer.writerow([example.text, LABELS[example.label]])
