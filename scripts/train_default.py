"""Reproduce the shipped default model: the data mix and caps used for models/default.

Run: python scripts/train_default.py --out build/train (needs the `train` extra).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from stream_app.model.train import TrainConfig, train

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FILES = [
    "financial_tweets_train.csv",
    "airline_tweets.csv",
    "crowdflower_tweets.csv",
    "sst2_train.csv",
    "movie_review_sentences.csv",
    "product_review_sentences.csv",
]
CAPS = {"crowdflower_tweets": 20000, "sst2_train": 30000}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=Path("build/train"))
    parser.add_argument("--max-minutes", type=float, default=45)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    config = TrainConfig(
        data=[args.data_dir / name for name in FILES],
        out=args.out,
        per_file_cap=CAPS,
        evals=6,
        max_minutes=args.max_minutes,
    )
    print(train(config)["best"])


if __name__ == "__main__":
    main()
