"""Detector parameter sweeps on generated scenario suites: how the defaults were chosen.

Reads `build/alerts-eval/seed-S/{events.jsonl,truth.json,manifest.json}` (written by
`scripts/evaluate_alerts` or `alerts scenarios --texts ...`), runs the detector with the given
overrides on gold labels and/or the model's labels, and prints the issue-12 figures per seed.
Tune on seeds other than the evaluation seeds (11, 23, 99). The model's labels of each distinct
text are cached in `build/alerts-eval/labels-<model revision>.json`.

    PYTHONPATH=. python bench/detector_sweep.py --seeds 1,2 --labels gold,model '{"cusum_threshold": 7}'
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import orjson

from stream_app.alerting.detector import DetectorParams
from stream_app.engine.calibration import Calibration
from stream_app.engine.swap import model_revision
from stream_app.offline import evaluate as ev


def model_labels(model: Path, texts: set[str], cache: Path) -> dict[str, str]:
    labels: dict[str, str] = json.loads(cache.read_text()) if cache.exists() else {}
    todo = texts - labels.keys()
    if todo:
        from stream_app.offline.model_labels import label_texts

        labels.update(label_texts(model, todo))
        cache.write_text(json.dumps(labels))
    return labels


def sweep(seed_dir: Path, kind: str, params: DetectorParams, model: Path, cache: Path) -> dict[str, Any]:
    """`alerts evaluate`'s figures for one suite: on its gold labels, or on `model`'s labels."""
    with seed_dir.joinpath("events.jsonl").open("rb") as fh:
        events = ev.parse_events(fh)
    if kind == "model":
        labels = model_labels(model, {str(text) for *_, text in events}, cache)
        events = [(entity, minute, labels[str(text)], text) for entity, minute, _, text in events]
    counts, first, last = ev.count_events(events)
    truth = ev.read_truth(seed_dir / "truth.json")
    manifest = orjson.loads(seed_dir.joinpath("manifest.json").read_bytes())
    report = ev.replay(counts, first, last, truth, params, kind, manifest)
    return {"precision": report.precision} | report.details


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="?", default="{}", help="DetectorParams overrides as JSON")
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--labels", default="gold,model")
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--work", type=Path, default=Path("build/alerts-eval"))
    args = parser.parse_args()
    overrides = json.loads(args.overrides)
    floor = Calibration.load(args.model).label_floor
    for seed in args.seeds.split(","):
        seed_dir = args.work / f"seed-{seed}"
        for kind in args.labels.split(","):
            # like `alerts evaluate`: the model's label floor for its labels, none for gold
            params = DetectorParams(label_floor=floor if kind == "model" else 0.0).with_overrides(overrides)
            cache = args.work / f"labels-{model_revision(args.model)}.json"  # a new model, a new cache
            r = sweep(seed_dir, kind, params, args.model, cache)
            print(
                f"seed {seed} {kind:5} precision {r['precision']:.3f} targeted recall "
                f"{r['targeted_detected']}/{r['targeted_spikes']} = {r['targeted_recall']} "
                f"delay {r['targeted_median_delay_min']} min, worst stationary FA/week "
                f"{r['worst_stationary_entity_false_alerts_per_week']}, "
                f"by volume {r['targeted_recall_by_posts_per_hour']}"
            )


if __name__ == "__main__":
    main()
