"""Long texts: accuracy and speed of the three strategies (`SM_LONG_TEXT`) on long reviews.

There is no long-review dev set in ../shared/data, so long reviews are built from held-out
review sentences (the stable hash hold-outs of `movie_review_sentences` and
`product_review_sentences`, never trained on): each review joins 8-16 sentences.
- "uniform": every sentence has the review's label;
- "verdict last": the first half is drawn from the other label, the second half (the
  verdict) from the review's label, like "started well, but ... returned it".
Accuracy is positive vs negative (the binary decision rule); speed is texts/s through the
engine, same texts, strategies interleaved in each repeat, median of the repeats.

    PYTHONPATH=. .venv/bin/python bench/long_text.py --model models/default --json bench/results/long_text.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import numpy as np

from stream_app.engine.onnx_classifier import OnnxClassifier
from stream_app.offline.model.data import LABEL_TO_ID, read_labelled_csv, split_holdout
from stream_app.offline.model.metrics import decide

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
STRATEGIES = ("head", "head_tail", "chunks")


def long_reviews(data_dir: Path, n: int, seed: int) -> dict[str, list[tuple[str, int]]]:
    pool: dict[int, list[str]] = {0: [], 2: []}
    for stem in ("movie_review_sentences", "product_review_sentences"):
        examples, _ = read_labelled_csv(data_dir / f"{stem}.csv")
        for example in split_holdout(examples, 0.1)[1]:
            pool[example.label].append(example.text)
    rng = random.Random(seed)
    out: dict[str, list[tuple[str, int]]] = {"uniform": [], "verdict last": []}
    for i in range(n):
        label = (LABEL_TO_ID["negative"], LABEL_TO_ID["positive"])[i % 2]
        other = 2 - label
        k = rng.randint(8, 16)
        out["uniform"].append((" ".join(rng.sample(pool[label], k)), label))
        half = k // 2
        text = " ".join(rng.sample(pool[other], half) + rng.sample(pool[label], k - half))
        out["verdict last"].append((text, label))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--data-dir", type=Path, default=DATA)
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sets = long_reviews(args.data_dir, args.n, seed=7)
    engines = {s: OnnxClassifier(args.model, provider="cpu", long_text=s) for s in STRATEGIES}  # type: ignore[arg-type]
    tokens = engines["head"].tokenizer._tokenizer.encode_batch([t for t, _ in sets["uniform"]])
    result: dict[str, object] = {
        "n_per_set": args.n,
        "median_tokens": float(np.median([len(e.ids) for e in tokens])),
        "max_length": engines["head"].tokenizer.max_length,
    }
    accuracy: dict[str, dict[str, float]] = {}
    speed: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    texts = [t for t, _ in sets["uniform"]]
    for _ in range(args.repeats):
        for strategy, engine in engines.items():
            start = time.perf_counter()
            for i in range(0, len(texts), 32):
                engine.classify(texts[i : i + 32])
            speed[strategy].append(len(texts) / (time.perf_counter() - start))
    for strategy, engine in engines.items():
        accuracy[strategy] = {}
        for name, rows in sets.items():
            probs = engine.probabilities([t for t, _ in rows])
            gold = np.array([label for _, label in rows])
            accuracy[strategy][name] = float((decide(probs, True, engine.calibration.offsets) == gold).mean())
    result["accuracy"] = accuracy
    result["texts_per_s_median"] = {s: round(statistics.median(v), 1) for s, v in speed.items()}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
