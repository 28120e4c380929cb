"""Detector parameter sweeps on generated scenario suites: how the defaults were chosen.

Reads `build/alerts-eval/seed-S/{events.jsonl,truth.json,manifest.json}` (written by
`scripts/evaluate_alerts` or `alerts scenarios --texts ...`), runs the detector with the given
overrides on gold labels and/or the model's labels, and prints the issue-12 figures per seed.
Tune on seeds other than the evaluation seeds (11, 23, 99). The model's labels of each distinct
text are cached in `build/alerts-eval/labels-cache.json`.

    PYTHONPATH=. python bench/detector_sweep.py --seeds 1,2 --labels gold,model '{"cusum_threshold": 7}'
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from stream_app.alerting import evaluate as ev
from stream_app.alerting.detector import MINUTE, DetectorParams
from stream_app.engine.calibration import Calibration


def model_labels(model: Path, texts: set[str], cache: Path) -> dict[str, str]:
    labels: dict[str, str] = json.loads(cache.read_text()) if cache.exists() else {}
    todo = texts - labels.keys()
    if todo:
        from stream_app.alerting.model_labels import label_texts

        labels.update(label_texts(model, todo))
        cache.write_text(json.dumps(labels))
    return labels


def sweep(seed_dir: Path, kind: str, params: DetectorParams, labels: dict[str, str]) -> dict[str, Any]:
    counts: ev.Counts = defaultdict(dict)
    first = last = None
    for line in seed_dir.joinpath("events.jsonl").open("rb"):
        event = orjson.loads(line)
        minute = int(event["ts"] // MINUTE) * MINUTE
        cell = counts[event["entity"]].setdefault(minute, [0, 0])
        label = event["gold"] if kind == "gold" else labels[event["text"]]
        cell[0] += label == "negative"
        cell[1] += 1
        first = minute if first is None else min(first, minute)
        last = minute if last is None else max(last, minute)
    assert first is not None and last is not None  # a suite always has events
    truth = orjson.loads(seed_dir.joinpath("truth.json").read_bytes())["spikes"]
    manifest = orjson.loads(seed_dir.joinpath("manifest.json").read_bytes())
    firings = [t for t in ev.run_detector(counts, first, last, params) if t.status == "firing"]
    days = (last + MINUTE - first) / 86400
    report, delays, false = ev.score(firings, truth, len(counts), days, params.short_window_min * MINUTE)
    return {"precision": report.precision} | ev._by_manifest(manifest, truth, delays, false, days)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="?", default="{}", help="DetectorParams overrides as JSON")
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--labels", default="gold,model")
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--work", type=Path, default=Path("build/alerts-eval"))
    args = parser.parse_args()
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(args.overrides).items()}
    floor = Calibration.load(args.model).label_floor
    for seed in args.seeds.split(","):
        seed_dir = args.work / f"seed-{seed}"
        texts = {orjson.loads(line)["text"] for line in seed_dir.joinpath("events.jsonl").open("rb")}
        for kind in args.labels.split(","):
            labels = model_labels(args.model, texts, args.work / "labels-cache.json") if kind == "model" else {}
            # like `alerts evaluate`: the model's label floor for its labels, none for gold
            params = DetectorParams(**({"label_floor": floor if kind == "model" else 0.0} | overrides))
            r = sweep(seed_dir, kind, params, labels)
            print(
                f"seed {seed} {kind:5} precision {r['precision']:.3f} targeted recall "
                f"{r['targeted_detected']}/{r['targeted_spikes']} = {r['targeted_recall']} "
                f"delay {r['targeted_median_delay_min']} min, worst stationary FA/week "
                f"{r['worst_stationary_entity_false_alerts_per_week']}, "
                f"by volume {r['targeted_recall_by_posts_per_hour']}"
            )


if __name__ == "__main__":
    main()
